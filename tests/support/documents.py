"""Small files of every format `atlas ingest` reads, made in the tests (nothing binary is checked in)."""

from __future__ import annotations

from pathlib import Path

HTML_PAGE = """<!DOCTYPE html>
<html><head><title>Platform Wiki - Queue Runbook</title>
<script>var token = "do-not-index-this-script";</script><style>.nav { color: red }</style></head>
<body>
<nav><a href="/">Home</a> / <a href="/ops">Operations</a></nav>
<h1>Queue Runbook</h1>
<p>How the <b>platform team</b> handles dead letters.</p>
<h2>Dead letters</h2>
<p>Pull the dead-letter subscription first.</p>
<ul><li>Fix the cause</li><li>Replay in batches</li></ul>
<pre class="language-bash">gcloud pubsub subscriptions pull atlas-tasks-dlq-inspect

# then replay</pre>
<h3>Escalation</h3>
<table><tr><th>tier</th><th>who</th></tr><tr><td>1</td><td>on-call</td></tr></table>
<footer>Last edited by someone</footer>
</body></html>
"""

TERRAFORM = """# Pub/Sub topics of the task pipeline

variable "project" {
  type        = string
  description = "the project {id}"
}

# Tasks wait here for the worker.
resource "google_pubsub_topic" "tasks" {
  project = var.project
  name    = "atlas-tasks"
  labels  = { team = "platform" }
  message_storage_policy {
    allowed_persistence_regions = ["europe-west1"]
  }
}

resource "google_pubsub_topic" "dead_letter" {
  name   = "${google_pubsub_topic.tasks.name}-dlq"
  schema = <<-EOT
    { "type": "record" }
  EOT
}
"""

KUBERNETES = """# Checkout service
apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout
  namespace: shop
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: checkout
          image: europe-docker.pkg.dev/shop/checkout:1.4.2
---
apiVersion: v1
kind: Service
metadata:
  name: checkout
spec:
  ports:
    - port: 80
      targetPort: 8080
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: checkout
spec:
  minReplicas: 3
  maxReplicas: 30
"""

CLOUDBUILD = """steps:
  - id: unit-tests
    name: python:3.11
    entrypoint: bash
    args: ["-c", "make unit"]
  # build and push the image
  - name: gcr.io/cloud-builders/docker
    args: ["build", "-t", "europe-docker.pkg.dev/shop/checkout:$SHORT_SHA", "."]
  - id: deploy
    name: gcr.io/google.com/cloudsdktool/cloud-sdk
    entrypoint: gcloud
    args: ["run", "deploy", "checkout"]
timeout: 1200s
options:
  logging: CLOUD_LOGGING_ONLY
"""

TEXT = """On-call handover notes.

# Not a heading: the pager rotates on Mondays.
Escalate to the database team after 30 minutes.
"""


def pdf_bytes(pages: list[list[str]], title: str | None = None) -> bytes:
    """A PDF with a real text layer: one Helvetica text object per page, written object by object."""
    count = len(pages)
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [" + " ".join(f"{4 + 2 * i} 0 R" for i in range(count)) + f"] /Count {count} >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for number, lines in enumerate(pages):
        shown = " ".join(f"({_pdf_string(line)}) Tj T*" for line in lines)
        content = f"BT /F1 12 Tf 14 TL 72 720 Td {shown} ET"
        objects.append(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {5 + 2 * number} 0 R >>"
        )
        objects.append(f"<< /Length {len(content)} >>\nstream\n{content}\nendstream")
    if title:
        objects.append(f"<< /Title ({_pdf_string(title)}) >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    info = f" /Info {len(objects)} 0 R" if title else ""
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _pdf_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def write_mixed_folder(folder: Path) -> Path:
    """One file of each format (the PDF has a metadata title and two pages)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "queues.md").write_text("# Queues\n\n## Ordering\n\nOrder per key only.\n", encoding="utf-8")
    (folder / "runbook.html").write_text(HTML_PAGE, encoding="utf-8")
    (folder / "pubsub.tf").write_text(TERRAFORM, encoding="utf-8")
    (folder / "checkout.yaml").write_text(KUBERNETES, encoding="utf-8")
    (folder / "cloudbuild.yaml").write_text(CLOUDBUILD, encoding="utf-8")
    (folder / "handover.txt").write_text(TEXT, encoding="utf-8")
    (folder / "dr-guide.pdf").write_bytes(
        pdf_bytes(
            [["Restore drills", "Restore a backup every quarter."], ["Failover", "Fail over twice a year."]],
            title="DR Guide",
        )
    )
    return folder

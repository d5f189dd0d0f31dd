"""Atlas: an infra-architect agent. The package both Cloud Functions import.

The small core sits here (``config``, ``errors``, ``limits``, ``models``, ``instance``); each layer is a subpackage
(``tasks``, ``design``, ``llm``, ``observability``, ``cli``, ``retrieval``), and imports flow one way: cli → tasks →
design → llm → core, with retrieval and observability on the core alone.
"""

__version__ = "0.1.0"

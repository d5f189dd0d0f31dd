"""Atlas: an infra-architect agent. The package both Cloud Functions import (models, config, pipeline, ...)."""

__version__ = "0.1.0"

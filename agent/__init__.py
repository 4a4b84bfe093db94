"""greenwave: edge agent for networked traffic signal controllers."""

__version__ = "0.1.0"

"""The bottom layer: vocabulary every app may import (labels, roles, request type), the
Celery app that sends tasks by name, and the Prometheus counters. Imports no other app."""

"""The bottom layer: vocabulary every app may import (labels, roles, request type) and the
Celery app that sends tasks by name. Imports nothing from other apps."""

"""The REST API under ``/api/v1/`` (docs/api.md).

Thin DRF views over the same services and selectors as the console: serializers
parse and validate, one service call does the work, the console's role
permissions decide who may call what.
"""

"""Shared web plumbing: the blueprint class, request guards, common schemas, paging, the OpenAPI document."""

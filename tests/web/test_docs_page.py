"""/docs works on an offline intranet: Swagger UI is served by the app itself, from a pinned package."""

import re


def test_the_docs_page_loads_nothing_from_another_host(client):
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(source.startswith("/") for source in sources), sources
    for source in sources:
        with client.get(source) as asset:  # a file response: closed when read
            assert asset.status_code == 200 and len(asset.data) > 1000, source


def test_object_bounds_are_stated_as_property_counts(client):
    """`maxLength` on an object is ignored by JSON Schema: a form or a mapping states its size as maxProperties."""
    spec = client.get("/openapi.json").json
    objects = [(name, field, prop) for name, schema in spec["components"]["schemas"].items()
               for field, prop in schema.get("properties", {}).items() if prop.get("type") == "object"]
    assert objects and not [o for o in objects if {"minLength", "maxLength"} & set(o[2])]
    schemas = spec["components"]["schemas"]
    assert schemas["FormBody"]["properties"]["fields"]["maxProperties"] == 200
    assert schemas["ConnectorRegister"]["properties"]["mapping"]["maxProperties"] == 100

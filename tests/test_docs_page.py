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

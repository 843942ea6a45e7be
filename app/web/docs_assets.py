"""Swagger UI's files for /docs, served by the app itself from the pinned `flask-swagger-ui` package.

Government intranets are often offline: a docs page that loads its script from a public CDN is a blank page
there. The package is only a carrier of Swagger UI's `dist/` (we use none of its code); flask-smorest's own
/docs page is pointed here by OPENAPI_SWAGGER_UI_URL.
"""

from importlib.resources import files

from flask import Blueprint

ASSETS_URL = "/docs/assets/"
DIST = files("flask_swagger_ui") / "dist"

blp = Blueprint("docs_assets", __name__, static_folder=str(DIST), static_url_path=ASSETS_URL.rstrip("/"))

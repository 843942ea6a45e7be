"""The production app plus one bare route, so both are measured in the same server configuration."""

from flask import jsonify

from app import create_app

app = create_app()


@app.get("/_bench/bare")
def bare():
    # The floor: the same app, middleware and JSON response machinery, with no database or schema work.
    return jsonify({"items": [], "page": 1})

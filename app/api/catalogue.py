"""Placeholder: replaced by the real module."""

from flask_smorest import Blueprint

blp = Blueprint("catalogue", __name__, url_prefix="/api/v1")

"""The matter catalogue: search, guides, statistics, data elements, bundles; admins write matters.

Read endpoints answer from the catalogue cache with a strong ETag and `Cache-Control: public`; a matching
`If-None-Match` gets 304. The documented response schema is what the cached body holds.
"""

from collections.abc import Callable

from flask import Response, current_app, request
from flask.views import MethodView
from flask_jwt_extended import get_jwt_identity
from marshmallow import RAISE

from app.accounts.guard import require
from app.catalogue import cache
from app.catalogue import services as catalogue
from app.catalogue.schemas import (
    BundlePageSchema,
    BundleSchema,
    CatalogueStatsSchema,
    MatterGuideSchema,
    MatterPageSchema,
    MatterQuerySchema,
    MatterReplaceSchema,
    MatterWriteSchema,
)
from app.web.blueprint import Blueprint
from app.web.openapi import links
from app.web.schemas import PageQuerySchema

blp = Blueprint("catalogue", __name__, url_prefix="/api/v1", description="The matter catalogue (事项目录)")

# Query schemas are passed as instances: given a class, webargs would build (deep-copy) a schema on every
# request, which costs more than answering from the cache. Unknown query parameters are a 422 like unknown
# body fields (webargs would otherwise drop them silently), so a misspelt filter never looks like no filter.
MATTER_QUERY = MatterQuerySchema()
PAGE_QUERY = PageQuerySchema()

IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "schema": {"type": "string"},
    "description": "the ETag of the guide being replaced: 412 if the matter changed since",
}
CACHE_HEADERS = {
    "ETag": {"description": "strong validator of the body", "schema": {"type": "string"}},
    "Cache-Control": {"schema": {"type": "string"}},
}


def cached(key: tuple, build: Callable[[], object]) -> Response:
    """The response for the body cached under `key` (`build()` makes it on a miss, dumped by a schema):
    ETag and Cache-Control set, 304 when If-None-Match matches."""
    rendered = cache.cache().get(key, build)
    response = current_app.response_class(rendered.body, mimetype="application/json")
    response.set_etag(rendered.etag)
    response.headers["Cache-Control"] = f"public, max-age={cache.max_age()}"
    if "HTTP_IF_NONE_MATCH" in request.environ:
        response.make_conditional(request)
    return response


def conditional_get(view):
    """Document the 304 of a cached read."""
    # The If-None-Match request header itself is not listed: a manual `parameters` doc would replace the
    # query parameters flask-smorest documents from the arguments schema.
    return blp.alt_response(304, description="Not modified: If-None-Match holds the current ETag")(view)


def guide_etag(matter) -> str:
    """The ETag GET /matters/{code} sends for `matter` as it is now."""
    return cache.render(MatterGuideSchema().dump(matter)).etag


def staff_subject() -> str:
    """Who is writing, as recorded in the matter's history: the token's `staff:<id>`."""
    return get_jwt_identity()


@blp.route("/matters")
class Matters(MethodView):
    @blp.arguments(MATTER_QUERY, location="query", unknown=RAISE)
    @blp.response(200, MatterPageSchema, headers=CACHE_HEADERS)
    @blp.doc(**links(200, {"ReadGuide": ("get", "/api/v1/matters/{code}"),
                           "Apply": ("post", "/api/v1/applications")},
                     parameters={"code": "$response.body#/items/0/code"},
                     bodies={"Apply": {"matter_code": "$response.body#/items/0/code"}}))
    @conditional_get
    def get(self, args):
        """Search and filter matters (q finds Chinese text in names, codes, keywords and departments)."""
        return cached(("matters", tuple(sorted(args.items()))),
                      lambda: MatterPageSchema().dump(catalogue.search_matters(**args)))

    @require("admin")
    @blp.arguments(MatterWriteSchema)
    @blp.response(201, MatterGuideSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data):
        """Create a matter (admin); its flags are derived from its materials."""
        return catalogue.create_matter(data, changed_by=staff_subject())


@blp.route("/matters/<code>")
class MatterGuide(MethodView):
    @blp.response(200, MatterGuideSchema, headers=CACHE_HEADERS)
    @blp.alt_response(404, response="NOT_FOUND")
    @conditional_get
    def get(self, code):
        """The full guide of a matter (一次告知): conditions, materials and their evidence options."""
        return cached(("guide", code), lambda: MatterGuideSchema().dump(catalogue.get_matter(code)))

    @require("admin")
    @blp.arguments(MatterReplaceSchema)
    @blp.response(200, MatterGuideSchema)
    @blp.doc(parameters=[IF_MATCH])
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def put(self, data, code):
        """Replace a matter (admin): version + 1, the previous version kept in its history."""
        if_match = request.if_match
        matter = catalogue.replace_matter(
            code, data, changed_by=staff_subject(),
            precondition=(lambda current: if_match.contains(guide_etag(current))) if if_match else None,
        )
        return matter, {"ETag": f'"{guide_etag(matter)}"'}


@blp.route("/stats/catalog")
class CatalogueStats(MethodView):
    @blp.response(200, CatalogueStatsSchema, headers=CACHE_HEADERS)
    @conditional_get
    def get(self):
        """Counts of matters online (掌上办), zero-material and face-verified, per department and category."""
        return cached(("stats",), lambda: CatalogueStatsSchema().dump(catalogue.compute_stats()))


@blp.route("/bundles")
class Bundles(MethodView):
    @blp.arguments(PAGE_QUERY, location="query", unknown=RAISE)
    @blp.response(200, BundlePageSchema, headers=CACHE_HEADERS)
    @conditional_get
    def get(self, args):
        """一件事 bundles with their matters."""
        return cached(("bundles", args["page"], args["per_page"]),
                      lambda: BundlePageSchema().dump(catalogue.bundle_page(**args)))


@blp.route("/bundles/<code>")
class BundleDetail(MethodView):
    @blp.response(200, BundleSchema, headers=CACHE_HEADERS)
    @blp.alt_response(404, response="NOT_FOUND")
    @conditional_get
    def get(self, code):
        """A 一件事 bundle and a summary of each of its matters."""
        return cached(("bundle", code), lambda: BundleSchema().dump(catalogue.get_bundle(code)))

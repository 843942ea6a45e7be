"""The reviewers' pages: the department's inbox, an application's detail, every review action, rectifications.

`applications.py` holds the inbox, the detail and the actions, `rectifications.py` the rectifications of poor
evaluations, `labels.py` the Chinese words for the API's codes; forms are read by `app/console/review_forms.py`
through the API's schemas. Importing the package adds their routes to the console's blueprint.
"""

from app.console.review import applications, rectifications  # noqa: F401

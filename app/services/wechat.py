"""Placeholder: replaced by the WeChat client."""


def init_app(app):
    pass

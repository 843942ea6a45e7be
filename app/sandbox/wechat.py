"""Placeholder: replaced by the WeChat API stand-in."""

from flask import Flask


def create_wechat_app() -> Flask:
    return Flask(__name__)

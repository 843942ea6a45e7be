"""The console's server-side SVG charts: values written out, series told apart without colour, text escaped."""

import pytest

from app.console.charts import Series, bar_chart


def test_every_bar_carries_its_value_and_each_series_its_own_pattern():
    svg = bar_chart("usage", "每日调用", ["12-01", "12-02"], [Series("调用", [120, 80]), Series("失败", [3, None])])
    assert svg.startswith('<svg id="usage"') and 'role="img"' in svg and "<title id=\"usage-title\">每日调用" in svg
    for text in (">120<", ">80<", ">3<", ">—<", ">12-01<", ">调用<", ">失败<"):
        assert text in svg
    assert 'fill="url(#usage-p1)"' in svg  # the second series is hatched, not only another colour
    assert "style=" not in svg  # the CSP allows no inline style


def test_names_are_escaped_and_an_empty_chart_says_so():
    svg = bar_chart("c", "<script>", [], [])
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "暂无数据" in svg


def test_a_series_must_match_the_categories():
    with pytest.raises(ValueError):
        bar_chart("c", "t", ["a", "b"], [Series("s", [1])])

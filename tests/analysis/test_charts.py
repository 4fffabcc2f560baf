"""Charts are SVG built on the server; names in them are escaped, numbers land where they should."""

from ratings.web.research.charts import IntervalRow, Point, bar_chart, heatmap, interval_chart, scatter_chart

HOSTILE = '<script>alert("x")</script>'


def test_model_names_are_escaped_in_every_chart():
    charts = [
        interval_chart([IntervalRow(HOSTILE, (1000, 990, 1010), (1005, 995, 1015))], HOSTILE),
        scatter_chart([Point(HOSTILE, 0.3, 0.6, "imitation", 0.5, 0.7)], HOSTILE, HOSTILE, HOSTILE, diagonal=True),
        heatmap([HOSTILE, "b"], [[None, 0.7], [0.3, None]], HOSTILE),
        bar_chart([HOSTILE], [3], HOSTILE, HOSTILE),
    ]
    for svg in charts:
        assert "<script>" not in svg and "&lt;script&gt;" in svg
        assert svg.startswith("<svg") and svg.endswith("</svg>")


def test_the_scatter_diagonal_and_log_axis_use_round_ticks():
    svg = scatter_chart(
        [Point("a", 7e9, 0.5, "base"), Point("b", 65e9, 0.6, "imitation")], "t", "params", "share", log_x=True
    )
    assert ">10B<" in svg and ">50B<" in svg
    assert "5.62341B" not in svg
    assert "y = x" in scatter_chart(
        [Point("a", 0.2, 0.7)], "t", "x", "y", x_range=(0, 1), y_range=(0, 1), diagonal=True
    )


def test_a_heatmap_cell_shows_its_share_and_blank_cells_show_nothing():
    svg = heatmap(["a", "b"], [[None, 0.75], [0.25, None]], "t")
    assert ">0.75<" in svg and ">0.25<" in svg
    assert svg.count("<rect") == 4

"""A link's QR code, read back as a phone's reader would (zxing-cpp)."""

from __future__ import annotations

import io
import re
from xml.etree import ElementTree

import httpx
import zxingcpp
from PIL import Image

from tests.support.accounts import new_account, shorten
from tests.support.problems import assert_problem


def decoded(png: bytes) -> list[str]:
    return [found.text for found in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


async def test_the_png_decodes_to_the_short_url_at_about_the_size_asked(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    link = await shorten(client, ana, code="scan-me")

    response = await client.get(
        "/api/links/scan-me/qr", params={"format": "png", "size": 400}, headers=ana.headers
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert decoded(response.content) == [link["short_url"]]
    width, height = Image.open(io.BytesIO(response.content)).size
    assert width == height and 300 <= width <= 400


def rasterised(svg: bytes) -> bytes:
    """segno's SVG drawn as a PNG: its one path is runs of dark modules along rows
    (`M x y.5` to start, `m dx dy` to move, `h n` for a run of n modules)."""
    root = ElementTree.fromstring(svg)  # noqa: S314 - our own server's answer
    width = int(root.attrib["width"])
    [path] = root.iter("{http://www.w3.org/2000/svg}path")
    scale = int(re.fullmatch(r"scale\((\d+)\)", path.attrib["transform"])[1])  # type: ignore[index]
    image = Image.new("1", (width // scale, width // scale), 1)
    x = y = 0.0
    for command, first, second in re.findall(
        r"([Mmh])(-?[\d.]+)(?:\s(-?[\d.]+))?", path.attrib["d"]
    ):
        if command == "M":
            x, y = float(first), float(second)
        elif command == "m":
            x, y = x + float(first), y + float(second)
        else:
            for column in range(int(x), int(x + float(first))):
                image.putpixel((column, int(y)), 0)
            x += float(first)
    out = io.BytesIO()
    image.resize((image.width * 8, image.height * 8)).save(out, format="PNG")
    return out.getvalue()


async def test_the_default_is_an_svg_that_decodes_to_the_short_url(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    link = await shorten(client, ana, code="vector")

    response = await client.get("/api/links/vector/qr", headers=ana.headers)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert decoded(rasterised(response.content)) == [link["short_url"]]


async def test_only_the_owner_gets_the_code_and_bad_parameters_are_a_422(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    bo = await new_account(client, "bo@example.com")
    await shorten(client, ana, code="private")

    assert_problem(await client.get("/api/links/private/qr", headers=bo.headers), 404)
    assert_problem(await client.get("/api/links/private/qr"), 401)
    for query, named in (({"format": "gif"}, "format"), ({"size": 10}, "size")):
        response = await client.get("/api/links/private/qr", params=query, headers=ana.headers)
        assert_problem(response, 422, fields=[named])

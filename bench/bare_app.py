"""The baseline: a bare Falcon app answering a fixed JSON body, nothing else.

Run by gunicorn with the gateway's settings: ``BENCH_BODY_FILE`` names the file holding the
exact bytes the gateway answered, so both send the same response.
"""

import os

import falcon

BODY = open(os.environ["BENCH_BODY_FILE"], "rb").read()


class Fixed:
    def on_get(self, req, resp):
        resp.data = BODY
        resp.content_type = falcon.MEDIA_JSON

    on_post = on_get


app = falcon.App()
app.add_sink(Fixed().on_get, "/")

"""get-artifact: a run's artifact, streamed from upstream with the provider's credentials."""

from __future__ import annotations

import re

import falcon

from flashfusion.core.access.permissions import Actor
from flashfusion.core.errors import NotFound
from flashfusion.core.runs.results import find_artifact
from flashfusion.core.runs.transitions import to_ref
from flashfusion.core.web.authentication import require
from flashfusion.core.web.parsing import query
from flashfusion.core.web.resources.base import GatewayResource
from flashfusion.core.web.resources.pipelines import provider_error, scoped_run
from flashfusion.plugins import ProviderError

UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


class GetArtifact(GatewayResource):
    @falcon.before(require("read_runs"))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        actor: Actor = req.context.actor
        run_id = query(req, "run_id", required=True, max_length=64)
        name = query(req, "name", required=True, max_length=1000)
        run = scoped_run(actor, run_id)
        artifact = find_artifact(run, name)
        if artifact is None:
            raise NotFound("Artifact not found", error="Artifact not found")
        pipeline = self.gw.pipeline(run.pipeline_id)
        try:
            chunks = self.gw.provider_for(pipeline).open_artifact(pipeline, to_ref(run), artifact)
        except NotImplementedError:
            raise NotFound("Artifact not found", error="Artifact not found") from None
        except ProviderError as exc:
            raise provider_error(exc, pipeline) from exc
        filename = UNSAFE_FILENAME.sub("_", name.rsplit("/", 1)[-1]) or "artifact"
        resp.content_type = "application/octet-stream"
        resp.set_header("Content-Disposition", f'attachment; filename="{filename}"')
        resp.stream = chunks

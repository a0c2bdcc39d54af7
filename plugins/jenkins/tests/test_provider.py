"""What the kit does not cover: Jenkins's own ways (CSRF crumbs, folders, multibranch
branch jobs, freestyle jobs, the queue, check(), TLS verification, result names)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from datetime import UTC

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fake_jenkins import FakeJenkins
from flashfusion_jenkins import mapping
from flashfusion_jenkins.provider import JenkinsProvider
from jenkins_control import settings_table

from flashfusion.plugins import Pipeline, RunRef, UpstreamUnavailable
from flashfusion.plugins.testing import Tracker


class _Control:
    """Just enough of a FakeControl for a Tracker."""

    marker_input = "kit_marker"
    timeout_seconds = 15.0

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    def pipeline(self) -> Pipeline:
        return self._pipeline

    def tick(self) -> None:
        import time

        time.sleep(0.01)


def provider_for(fake: FakeJenkins, **extra) -> JenkinsProvider:
    return JenkinsProvider.from_table(settings_table(fake, **extra), env={"JENKINS_TOKEN": fake.token})


def tracker(fake: FakeJenkins, pipeline: Pipeline, **extra) -> Tracker:
    return Tracker(_Control(pipeline), provider_for(fake, **extra))  # type: ignore[arg-type]


def crumb_requests(fake: FakeJenkins) -> int:
    return sum(1 for _, path, _ in fake.requests if path == "/crumbIssuer/api/json")


def test_a_crumb_is_fetched_once_when_jenkins_asks_and_never_otherwise():
    with FakeJenkins(require_crumb=True) as fake:
        fake.add_job("app")
        runs = tracker(fake, Pipeline(id="p", name="p", provider="jenkins", repository_name="app"))
        first, second = runs.dispatch(), runs.dispatch()
        assert first.ref.state["queue_item"] != second.ref.state["queue_item"]
        assert crumb_requests(fake) == 1
        refused = [r for r in fake.requests if r[2] == 403]
        assert len(refused) == 1  # only the very first POST went without the crumb
    with FakeJenkins() as fake:
        fake.add_job("app")
        tracker(fake, Pipeline(id="p", name="p", provider="jenkins", repository_name="app")).dispatch()
        assert crumb_requests(fake) == 0


def test_folder_and_multibranch_jobs_are_reached_by_their_nested_paths():
    with FakeJenkins() as fake:
        fake.add_job("org/team/app")
        branch_job = fake.add_job("org/repo/feature%2Flogin")
        folder = tracker(
            fake, Pipeline(id="f", name="f", provider="jenkins", repository_name="x/y", options={"job": "org/team/app"})
        )
        run = folder.dispatch()
        assert folder.bound(run) == "1"
        multi = Pipeline(
            id="m",
            name="m",
            provider="jenkins",
            repository_name="org/repo",
            branch="main",
            options={"multibranch": True},
        )
        runs = tracker(fake, multi)
        ref = runs.new_ref()
        run = runs.dispatch(
            RunRef(id=ref.id, pipeline_id="m", ref="feature/login", inputs=ref.inputs, created_at=ref.created_at)
        )
        assert runs.bound(run) == "1"
        assert list(branch_job.builds) == [1]
        assert ("POST", "/job/org/job/repo/job/feature%252Flogin/buildWithParameters", 201) in fake.requests


def test_pipeline_stages_are_steps_and_a_freestyle_build_is_one_step():
    with FakeJenkins() as fake:
        fake.add_job("pipe", stages=("Checkout", "Build", "Deploy"), fail_stage="Deploy")
        fake.add_job("plain", stages=None)
        runs = tracker(fake, Pipeline(id="p", name="p", provider="jenkins", repository_name="pipe"))
        run = runs.dispatch()
        number = int(runs.bound(run))
        while fake.advance(number):
            pass
        runs.wait(run, lambda r: r.terminal, "the pipeline build to end")
        assert [(s.name, s.status) for s in run.ref.steps] == [
            ("Checkout", "success"),
            ("Build", "success"),
            ("Deploy", "failed"),
        ]
        assert (run.status, run.conclusion, run.ref.provider_status) == ("failed", "failure", "FAILURE")
        assert all(s.started_at and s.completed_at and s.duration_seconds is not None for s in run.ref.steps)

        plain = tracker(fake, Pipeline(id="q", name="q", provider="jenkins", repository_name="plain"))
        run = plain.dispatch()
        plain.bound(run)
        fake.set_state(int(run.ref.upstream_id), "SUCCESS", job="plain")
        plain.wait(run, lambda r: r.terminal, "the freestyle build to end")
        assert [(s.name, s.status) for s in run.ref.steps] == [("plain", "success")]
        wfapi = [p for _, p, _ in fake.requests if p.startswith("/job/plain/") and p.endswith("/wfapi/describe")]
        assert len(wfapi) == 1  # a freestyle job is asked for stages once


def test_cancel_while_queued_cancels_the_queue_item():
    with FakeJenkins(start_after=1000) as fake:
        fake.add_job("app")
        runs = tracker(fake, Pipeline(id="p", name="p", provider="jenkins", repository_name="app"))
        run = runs.dispatch()
        runs.poll()
        assert (run.phase, run.ref.provider_status) == ("queued", "queued")
        runs.provider.cancel(runs.pipeline, run.ref)
        runs.wait(run, lambda r: r.terminal, "the queued run to end")
        assert (run.status, run.conclusion) == ("failed", "cancelled")
        assert fake.builds() == []


def test_check_names_each_problem():
    with FakeJenkins() as fake:
        fake.add_job("ok")
        fake.add_job("off", buildable=False)
        provider = provider_for(fake)

        def pipeline(job):
            return Pipeline(id="p", name="p", provider="jenkins", repository_name=job)

        assert provider.check(pipeline("ok")) == []
        assert provider.check(pipeline("off")) == ["jenkins: job 'off' is disabled (not buildable)"]
        assert "not found (HTTP 404)" in provider.check(pipeline("missing"))[0]
        wrong = JenkinsProvider.from_table(settings_table(fake), env={"JENKINS_TOKEN": "not-the-token"})
        assert "refused the credentials (HTTP 401)" in wrong.check(pipeline("ok"))[0]
        unset = JenkinsProvider.from_table(settings_table(fake), env={})
        assert unset.check(pipeline("ok")) == ["jenkins: environment variable JENKINS_TOKEN (API token) is not set"]


def _tls(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake jenkins")])
    now = datetime.datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, str(cert_file)


def test_ssl_verify_refuses_an_unknown_certificate_unless_told_its_ca_or_turned_off(tmp_path):
    context, ca_file = _tls(tmp_path)
    fake = FakeJenkins().start(tls=context)
    try:
        fake.add_job("app")
        pipeline = Pipeline(id="p", name="p", provider="jenkins", repository_name="app")
        assert fake.url.startswith("https://")
        with pytest.raises(UpstreamUnavailable, match="cannot reach Jenkins"):
            tracker(fake, pipeline).dispatch()
        assert tracker(fake, pipeline, ssl_verify=ca_file).dispatch().ref.state["queue_item"]
        assert tracker(fake, pipeline, ssl_verify=False).dispatch().ref.state["queue_item"]
    finally:
        fake.stop()


RESULTS = {  # a finished build's Jenkins result -> the run's (status, conclusion)
    "SUCCESS": ("success", "success"),
    "UNSTABLE": ("failed", "unstable"),
    "FAILURE": ("failed", "failure"),
    "ABORTED": ("failed", "cancelled"),
    "NOT_BUILT": ("success", "skipped"),
    "SOMETHING_NEW": ("failed", "unknown"),
}


@pytest.mark.parametrize("result", RESULTS)
def test_results_map_to_the_common_model(result):
    status, conclusion = RESULTS[result]
    assert mapping.run_state({"building": False, "result": result}) == (status, "completed", conclusion, result)

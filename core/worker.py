"""The worker: claims active runs, dispatches queued ones, polls providers, records
transitions, and calls ``run_finished`` hooks.

Runs are claimed with a lease (``lease_owner``/``lease_until``) renewed every tick, so
several workers share the work and a killed worker's runs are picked up by another once
its lease expires. Each provider is polled once per pipeline per interval with all of that
pipeline's active runs at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

import peewee

from flashfusion.core import housekeeping
from flashfusion.core.gateway import Gateway
from flashfusion.core.hooks import activity, inbox
from flashfusion.core.hooks.apply import apply_delivery
from flashfusion.core.observability import metrics, tracing
from flashfusion.core.runs import service
from flashfusion.core.runs import transitions as runs
from flashfusion.core.runs.results import completion_for
from flashfusion.core.runs.serialize import run_to_dict
from flashfusion.core.runs.triggers import Scheduler
from flashfusion.core.storage.db import database, is_sqlite, to_db_time, utcnow, write_tx
from flashfusion.core.storage.models import Run
from flashfusion.core.webhooks.dispatcher import Dispatcher
from flashfusion.plugins import Pipeline, ProviderError

log = logging.getLogger("flashfusion.worker")
HISTORY = 50
APPLY_CHUNK = 200
SWEEP_SECONDS = 300
HOOK_BATCH = 200


class Worker:
    def __init__(
        self,
        gateway: Gateway,
        worker_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        """``clock`` paces polling; ``now`` is the wall-clock time that schedules are due by."""
        self.gw = gateway
        self.cfg = gateway.config.worker
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.clock = clock
        self._last_poll: dict[str, float] = {}
        self._last_sweep: float | None = None
        self.now = now
        self.scheduler = Scheduler(gateway)
        self._hook_sources: dict[tuple[str, str], datetime] = {}
        #: when a reconcile poll last found a change that no hook had reported, per source
        self._missed: dict[tuple[str, str], datetime] = {}
        self.stop_event = threading.Event()
        self.webhooks = Dispatcher(gateway, worker_id=self.id)  # delivers webhooks in its own thread

    def run_forever(self) -> None:
        log.info("worker %s started", self.id)
        self.webhooks.start()
        try:
            while not self.stop_event.is_set():
                try:
                    self.tick()
                except peewee.DatabaseError as exc:
                    log.warning("database error in worker tick: %s", exc.__class__.__name__)
                    database.close()
                self.stop_event.wait(self.cfg.tick_seconds)
        finally:
            self.shutdown()
            metrics.process_exited()
            tracing.shutdown()

    def shutdown(self) -> None:
        """Stop child work and hand this worker's runs back at once."""
        self.webhooks.stop()
        self.gw.providers.close()
        try:
            with database.connection_context():
                Run.update(lease_owner=None, lease_until=None).where(Run.lease_owner == self.id).execute()
        except peewee.DatabaseError:
            pass  # leases expire on their own
        log.info("worker %s stopped", self.id)

    def tick(self) -> None:
        with metrics.timed(metrics.worker_tick), database.connection_context():
            if self._last_sweep is None or self.clock() - self._last_sweep >= SWEEP_SECONDS:
                self._last_sweep = self.clock()
                housekeeping.sweep(self.gw.config, utcnow())
                inbox.prune(utcnow())
            self.scheduler.tick(self.now())
            self.apply_hooks()
            claimed = self.claim()
            by_pipeline: dict[str, list[Run]] = defaultdict(list)
            for run in claimed:
                pipeline = self.gw.config.pipeline(run.pipeline_id)
                if pipeline is None:
                    runs.fail_run(
                        run.id, "configuration_error", f"pipeline {run.pipeline_id!r} is no longer configured"
                    )
                    continue
                if run.cancel_requested and not service.cancel_upstream(self.gw, pipeline, run):
                    continue
                if run.phase == "queued":
                    self.dispatch(pipeline, run)
                    continue
                by_pipeline[pipeline.id].append(run)
            for pipeline_id, active in by_pipeline.items():
                self.poll(self.gw.config.pipelines[pipeline_id], active)
            metrics.record_budgets(self.gw.providers.instances.values())  # after results() and hooks' calls too
            self.finish_runs()

    def claim(self) -> list[Run]:
        """Renew the leases of every active run this worker holds, take up to
        ``batch_size`` more that nobody holds (or whose holder's lease ran out), oldest
        first, and return all the active runs now held."""
        now = utcnow()
        until = to_db_time(now + timedelta(seconds=self.cfg.lease_seconds))
        active = Run.phase.in_(runs.ACTIVE_PHASES)  # IN, not !=, so the (phase, lease_until) index serves it
        free = active & (Run.lease_owner.is_null() | (Run.lease_until < to_db_time(now)))
        with write_tx():
            Run.update(lease_until=until).where((Run.lease_owner == self.id) & active).execute()
            query = Run.select(Run.id).where(free).order_by(Run.created_at).limit(self.cfg.batch_size)
            if not is_sqlite():
                query = query.for_update(skip_locked=True)
            ids = [r.id for r in query]
            if ids:
                Run.update(lease_owner=self.id, lease_until=until).where(Run.id.in_(ids)).execute()
        return list(Run.select().where((Run.lease_owner == self.id) & active).order_by(Run.created_at))

    def dispatch(self, pipeline: Pipeline, run: Run) -> None:
        try:
            service.dispatch(self.gw, pipeline, run, then_lease_to=self.id)
        except Exception:
            pass  # the run has ended failed with the reason, and the service logged it

    def apply_hooks(self) -> None:
        """Apply the inbox's pending provider webhooks, oldest first, and note which
        repositories' hooks arrive (the reconciler's switch, see ``poll_interval``)."""
        rows = inbox.claim(self.id, HOOK_BATCH, self.cfg.lease_seconds)
        finished: list[str] = []
        for row in rows:
            try:
                applied = apply_delivery(self.gw, row)
            except peewee.DatabaseError:
                raise
            except Exception:
                log.exception("applying hook %s of %s crashed", row.delivery_id, row.provider)
                with write_tx():
                    inbox.done(row, None, "crashed")
                continue
            finished.extend(applied.finished)
            for pipeline_id in applied.poll_now:
                self._last_poll.pop(pipeline_id, None)
        for run_id in finished:
            self.finished(run_id)
        takes = any(activity.takes_hooks(p.settings) for p in self.gw.providers.instances.values())
        self._hook_sources = activity.last_by_source(utcnow() - activity.TRUSTED_FOR) if takes else {}

    def poll_interval(self, pipeline: Pipeline, active: list[Run]) -> float:
        """``poll_interval_seconds``; ``reconcile_interval_seconds`` instead while the
        repository's hooks are trusted (``activity.trusted``) and every run is bound to its
        upstream run (binding a dispatch without a run id needs the list)."""
        settings = self.gw.provider_for(pipeline).settings
        interval = float(getattr(settings, "poll_interval_seconds", 5))
        source = (pipeline.provider, pipeline.repository_name)
        if (
            activity.takes_hooks(settings)
            and all(r.upstream_id for r in active)
            and activity.trusted(self._hook_sources.get(source), self._missed.get(source), utcnow())
        ):
            return activity.reconcile_seconds(settings)
        return interval

    def poll(self, pipeline: Pipeline, active: list[Run]) -> None:
        provider = self.gw.provider_for(pipeline)
        interval = self.poll_interval(pipeline, active)
        last = self._last_poll.get(pipeline.id)
        if last is not None and self.clock() - last < interval:
            return
        self._last_poll[pipeline.id] = self.clock()
        try:
            with (
                tracing.span(
                    "poll",
                    {
                        "flashfusion.pipeline": pipeline.id,
                        "flashfusion.provider": pipeline.provider,
                        "flashfusion.runs": len(active),
                    },
                ),
                metrics.provider_call(pipeline.provider, "poll", provider),
            ):
                snapshots = provider.poll(pipeline, [runs.to_ref(r) for r in active])
        except ProviderError as exc:
            log.warning("polling pipeline %s failed: %s", pipeline.id, exc.message)
            return
        except Exception:
            log.exception("polling pipeline %s crashed", pipeline.id)
            return
        refs = {r.id: runs.to_ref(r) for r in active}
        relevant = [s for s in snapshots if s.run_id in refs]
        check_gate = self.gw.pm.hook.check_quality_gate
        completions = {
            s.run_id: completion_for(pipeline, provider, refs[s.run_id], s, check_gate) for s in relevant if s.terminal
        }
        before = {r.id: (r.status, r.phase) for r in active}
        moved = False  # a run's status or phase changed: what hooks report (steps they may not)
        for start in range(0, len(relevant), APPLY_CHUNK):
            with write_tx():  # one commit for many transitions; each still has its own savepoint
                for snapshot in relevant[start : start + APPLY_CHUNK]:
                    if (
                        runs.apply_snapshot(snapshot, lease_owner=self.id, completion=completions.get(snapshot.run_id))
                        and (snapshot.status, "completed" if snapshot.terminal else snapshot.phase)
                        != before[snapshot.run_id]
                    ):
                        moved = True
        if moved and interval != float(getattr(provider.settings, "poll_interval_seconds", 5)):
            self._missed[(pipeline.provider, pipeline.repository_name)] = utcnow()  # a hook went missing

    def finish_runs(self) -> None:
        """Call the ``run_finished`` hooks of the completed runs whose hooks are due (the
        completing transition marks them). Taking a run postpones its hooks by
        ``lease_seconds``; the ``optimization.available`` event and the end of the mark are
        one transaction. So a worker killed in between only makes the hooks run again (here
        or in another worker), and the event, unique per run and type, is written once."""
        now = utcnow()
        with write_tx():
            due = (
                Run.select(Run.id)
                .where(Run.hooks_due_at <= to_db_time(now))
                .order_by(Run.hooks_due_at)
                .limit(self.cfg.batch_size)
            )
            if not is_sqlite():
                due = due.for_update(skip_locked=True)
            taken = [r.id for r in due]
            if taken:
                Run.update(hooks_due_at=to_db_time(now + timedelta(seconds=self.cfg.lease_seconds))).where(
                    Run.id.in_(taken)
                ).execute()
        for run_id in taken:
            self.finished(run_id)

    def finished(self, run_id: str) -> None:
        run = Run.get_by_id(run_id)
        history = (
            Run.select()
            .where((Run.pipeline_id == run.pipeline_id) & (Run.phase == "completed") & (Run.id != run.id))
            .order_by(Run.finished_at.desc())
            .limit(HISTORY)
        )
        try:
            results = self.gw.pm.hook.run_finished(run=run_to_dict(run), history=[run_to_dict(r) for r in history])
        except Exception:  # a hook that fails publishes nothing and is not called again for this run
            log.exception("a run_finished hook failed for %s", run_id)
            results = []
        suggestions = [s for result in results if result for s in result]
        with write_tx():
            if suggestions:
                runs.emit(
                    "optimization.available", run.pipeline_id, run.id, {"run_id": run.id, "suggestions": suggestions}
                )
            Run.update(hooks_due_at=None).where(Run.id == run.id).execute()

"""Helpers of the agent tests: a repository with a fake kernel root and an
agent configured for channel prod."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "repository"))

from fake_kernel import FakeKernel, make_root
from repo_helpers import BUILD_ID, RELEASE, keypair, make_module

from kbuilder.agent.agent import Agent
from kbuilder.agent.config import AgentConfig
from kbuilder.repository import store


class World:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.key_path, self.key = keypair(work)
        self.repo = work / "repo"
        store.init(self.repo, str(self.key_path))
        self.root = make_root(work / "root", release=RELEASE, build_id=BUILD_ID)
        self.kernel = FakeKernel(self.root)
        self.config = AgentConfig(repository=f"file://{self.repo}", keys=[self.key.public], channel="prod",
                                  state_dir=str(work / "state"))
        self.lines: list[str] = []
        self.clock: datetime | None = None

    def add(self, name: str, channel: str = "dev", **kw: Any) -> Any:
        ko, doc, _ = make_module(self.work / "build", name, **kw)
        return store.add(self.repo, ko, doc, channel=channel)

    def promote(self, name: str) -> None:
        store.promote(self.repo, name, source="dev", destination="prod")

    def agent(self, **config: Any) -> Agent:
        for key, value in config.items():
            setattr(self.config, key, value)
        from kbuilder.repository.index import utcnow

        return Agent(self.config, self.kernel, echo=self.lines.append,
                     now=(lambda: self.clock) if self.clock else utcnow, sleep=lambda _: None)

    def loaded(self) -> list[str]:
        return sorted(p.name for p in self.kernel.livepatches() if p.enabled)

    def modules(self) -> list[str]:
        return sorted(p.name for p in (self.root / "sys/module").iterdir())

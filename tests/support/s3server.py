"""A real S3-compatible HTTP server on 127.0.0.1 (moto's standalone server)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import boto3
import requests

from tests.support.servers import BIN, free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}


class S3Server:
    def __init__(self, bucket: str = "artifacts"):
        self.bucket = bucket
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    @property
    def client_env(self) -> dict[str, str]:
        """What an MLflow server or client needs to use this endpoint."""
        return {**CREDENTIALS, "MLFLOW_S3_ENDPOINT_URL": self.url, "AWS_MAX_ATTEMPTS": "2"}

    def start(self) -> S3Server:
        self.process = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p",
                                         str(self.port)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(self.url, timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            raise RuntimeError("moto server did not start")
        boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                     aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_bucket(Bucket=self.bucket)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

"""BackupStorage: where scheduled backup flows keep backups, with credentials kept secret.

A local directory (``url = "/var/backups/lockplane"``) or an S3 bucket and prefix
(``url = "s3://bucket/prefix"``) with optional access keys, region and endpoint (for
S3-compatible stores); without keys boto3's own chain is used (instance role, profile,
environment). prefect-aws is not needed.
"""

from __future__ import annotations

from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import ConfigDict, Field, SecretStr

from lockplane.backup import LocalStorage, S3Storage, Storage


class BackupStorage(Block):
    """A backup location for Lockplane's backup flows."""

    model_config: ClassVar[ConfigDict] = ConfigDict(**Block.model_config,
                                                    hide_input_in_errors=True)

    _block_type_name = "Lockplane Backup Storage"
    _block_type_slug = "lockplane-backup-storage"
    _description = ("Where Lockplane stores backups and their manifests: a directory or an "
                    "S3 bucket/prefix.")

    url: str = Field(description="A directory path, or s3://bucket/prefix.")
    aws_access_key_id: str | None = Field(default=None, description="S3 access key id "
                                          "(empty: boto3's default credential chain).")
    aws_secret_access_key: SecretStr | None = Field(default=None,
                                                    description="S3 secret access key.")
    region: str | None = Field(default=None, description="S3 region.")
    endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint "
                                     "(MinIO, R2, ...); empty for AWS.")

    def storage(self) -> Storage:
        """The engine's Storage for this location."""
        if self.url.startswith("s3://"):
            bucket, _, prefix = self.url[len("s3://"):].partition("/")
            secret = (self.aws_secret_access_key.get_secret_value()
                      if self.aws_secret_access_key else None)
            return S3Storage(bucket, prefix, endpoint_url=self.endpoint_url,
                             region=self.region, aws_access_key_id=self.aws_access_key_id,
                             aws_secret_access_key=secret)
        return LocalStorage(self.url)

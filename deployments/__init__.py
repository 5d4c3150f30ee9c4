"""Code that builds and serves Lockplane's Prefect deployments."""

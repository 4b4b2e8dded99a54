"""Shared fixtures: a throwaway PostgreSQL cluster per test module that needs one."""

import pytest

import stormchor as sc


@pytest.fixture(scope="module")
def cluster():
    with sc.Cluster() as cluster:
        yield cluster

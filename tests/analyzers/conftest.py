from tests.analyzers.storefixtures import chdb_path, store  # noqa: F401

-- The user lambdascope's read API runs as: it may read the lambdascope database and nothing
-- else (no other database, no files, URLs or other servers, no writes). The collector checks
-- these grants at start (SHOW GRANTS) and warns if the user may do more.
CREATE USER IF NOT EXISTS lambdascope_reader
    IDENTIFIED WITH sha256_password BY 'lambdascope_reader'
    DEFAULT DATABASE lambdascope;
GRANT SELECT ON lambdascope.* TO lambdascope_reader;

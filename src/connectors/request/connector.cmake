# The Request connector polls HTTP(S) endpoints with libcurl (multi interface), through
# src/util/http_client.c, which the REST connector uses too.
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
list(APPEND TBGW_CONNECTOR_LIBS PkgConfig::CURL)

# The REST connector serves HTTP through the HTTP module (tbgw_http.so, libmicrohttpd, loaded at run
# time) and sends its outgoing requests with libcurl through src/util/http_client.c.
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
list(APPEND TBGW_CONNECTOR_LIBS PkgConfig::CURL)

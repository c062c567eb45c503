pkg_check_modules(LWS REQUIRED IMPORTED_TARGET libwebsockets)
list(APPEND TBGW_CONNECTOR_LIBS PkgConfig::LWS PkgConfig::PCRE2)

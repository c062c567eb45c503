pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
    list(APPEND TBGW_CONNECTOR_LIBS PkgConfig::CURL PkgConfig::PCRE2)

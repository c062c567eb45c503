# The SNMP connector uses net-snmp (Debian libsnmp-dev).
pkg_check_modules(NETSNMP REQUIRED IMPORTED_TARGET netsnmp)
list(APPEND TBGW_CONNECTOR_LIBS PkgConfig::NETSNMP)

# Runs at install time (install(SCRIPT) in packaging/CMakeLists.txt): fills ztslm.service.in with
# the paths of the prefix actually installed to, so `cmake --install --prefix P` and the package
# (CPack installs with DESTDIR and prefix /usr) both get a unit that names their own files.
foreach(v BINDIR SYSCONFDIR DOCDIR)
  if(IS_ABSOLUTE "${ZTSLM_INSTALL_${v}}")
    set(_ztslm_${v} "${ZTSLM_INSTALL_${v}}")
  else()
    set(_ztslm_${v} "${CMAKE_INSTALL_PREFIX}/${ZTSLM_INSTALL_${v}}")
  endif()
endforeach()
set(ZTSLM_BINARY "${_ztslm_BINDIR}/ztslm")
set(ZTSLM_CONFIG_FILE "${_ztslm_SYSCONFDIR}/ztslm/ztslm.yaml")
set(ZTSLM_DOC_DIR "${_ztslm_DOCDIR}")
set(_ztslm_unit "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}/lib/systemd/system/ztslm.service")
message(STATUS "Installing: ${_ztslm_unit}")
configure_file("${ZTSLM_UNIT_TEMPLATE}" "${_ztslm_unit}" @ONLY)
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${_ztslm_unit}")

include(CMakePackageConfigHelpers)

install(TARGETS xring xring_static EXPORT xringTargets
	LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
	ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
	INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES include/xring.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(EXISTS ${PROJECT_SOURCE_DIR}/include/xring)
	install(DIRECTORY include/xring DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endif()
install(EXPORT xringTargets NAMESPACE xring:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/xring)

configure_package_config_file(cmake/xringConfig.cmake.in
	${PROJECT_BINARY_DIR}/xringConfig.cmake
	INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/xring)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/xringConfigVersion.cmake
	COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/xringConfig.cmake ${PROJECT_BINARY_DIR}/xringConfigVersion.cmake
	DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/xring)

# The pkg-config file finds its prefix from its own place, so an installed tree can move.
file(RELATIVE_PATH XRING_PC_UP /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
configure_file(cmake/xring.pc.in ${PROJECT_BINARY_DIR}/xring.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/xring.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

file(GLOB XRING_MAN3 ${PROJECT_SOURCE_DIR}/man/*.3)
file(GLOB XRING_MAN7 ${PROJECT_SOURCE_DIR}/man/*.7)
file(GLOB XRING_MAN5 ${PROJECT_SOURCE_DIR}/man/*.5)
file(GLOB XRING_MAN1 ${PROJECT_SOURCE_DIR}/man/*.1)
install(FILES ${XRING_MAN3} DESTINATION ${CMAKE_INSTALL_MANDIR}/man3)
install(FILES ${XRING_MAN7} DESTINATION ${CMAKE_INSTALL_MANDIR}/man7)
if(XRING_MAN5)
	install(FILES ${XRING_MAN5} DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
endif()
if(XRING_MAN1)
	install(FILES ${XRING_MAN1} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()

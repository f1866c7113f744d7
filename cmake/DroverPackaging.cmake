# Debian packages of what this tree builds, with CPack, one package per program:
#   drover-agent  drover-agent, its unit and /etc/drover/agent.yaml       (amd64, arm64, armhf)
#   drover-hub    drover-hub, the drover-auth Mosquitto plugin, its unit,
#                 /etc/drover/hub.env                                      (amd64, arm64)
#   drover-cli    drover, the command-line client (an operator's machine needs nothing else)
#   cmake -S . -B build-pkg -DCMAKE_BUILD_TYPE=MinSizeRel [-DCMAKE_TOOLCHAIN_FILE=toolchains/...]
#   cmake --build build-pkg --target package     # or: cpack --config build-pkg/CPackConfig.cmake
# The packages' own files (units, configuration, maintainer scripts) are in ports/debian/; they
# are installed only into packages (EXCLUDE_FROM_ALL), never by a plain `cmake --install`.
# Binaries are stripped. Dependencies: dpkg-shlibdeps finds the linked libraries (also for a
# cross build: the multiarch -dev packages of `ports/debian/install-deps --cross` are
# installed), the rest is listed below by hand: what the programs dlopen or run.
# Included by the top-level CMakeLists.txt after the programs' directories.

set(DROVER_DEB_SRC ${CMAKE_SOURCE_DIR}/ports/debian)
set(DROVER_DEB_CONTROL ${CMAKE_BINARY_DIR}/debian)

# The Debian architecture: the cross toolchain files set DROVER_DEBIAN_ARCH, else dpkg's own.
# (DroverDeps.cmake's DROVER_DEB_ARCH is another thing: ":arm64", a suffix for package names.)
if(NOT DROVER_DEBIAN_ARCH)
  execute_process(COMMAND dpkg --print-architecture OUTPUT_VARIABLE DROVER_DEBIAN_ARCH
    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
endif()

# drover_deb_control(COMPONENT PACKAGE [CONFFILE...]): the package's maintainer scripts from
# ports/debian/PACKAGE.{postinst,prerm,postrm} (those that exist) and its conffiles.
function(drover_deb_control comp pkg)
  set(dir ${DROVER_DEB_CONTROL}/${comp})
  file(MAKE_DIRECTORY ${dir})
  set(extra "")
  foreach(script postinst prerm postrm)
    if(EXISTS ${DROVER_DEB_SRC}/${pkg}.${script})
      configure_file(${DROVER_DEB_SRC}/${pkg}.${script} ${dir}/${script} COPYONLY)
      list(APPEND extra ${dir}/${script})
    endif()
  endforeach()
  if(ARGN)
    list(JOIN ARGN "\n" lines)
    file(WRITE ${dir}/conffiles "${lines}\n")
    list(APPEND extra ${dir}/conffiles)
  endif()
  string(TOUPPER ${comp} c)
  set(CPACK_DEBIAN_${c}_PACKAGE_NAME ${pkg} PARENT_SCOPE)
  set(CPACK_DEBIAN_${c}_PACKAGE_CONTROL_EXTRA "${extra}" PARENT_SCOPE)
  set(CPACK_DEBIAN_${c}_PACKAGE_CONTROL_STRICT_PERMISSION TRUE PARENT_SCOPE)
endfunction()

set(DROVER_DEB_COMPONENTS "")

if(TARGET drover-agent)
  list(APPEND DROVER_DEB_COMPONENTS agent)
  install(FILES ${DROVER_DEB_SRC}/drover-agent.service DESTINATION /lib/systemd/system
    COMPONENT agent EXCLUDE_FROM_ALL)
  install(PROGRAMS ${DROVER_DEB_SRC}/agent-stop-post DESTINATION lib/drover
    COMPONENT agent EXCLUDE_FROM_ALL)
  install(FILES ${DROVER_DEB_SRC}/agent.yaml DESTINATION /etc/drover
    COMPONENT agent EXCLUDE_FROM_ALL)
  install(FILES ${DROVER_DEB_SRC}/drover-agent.modules-load.conf DESTINATION /usr/lib/modules-load.d
    RENAME drover-agent.conf COMPONENT agent EXCLUDE_FROM_ALL)
  install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION share/doc/drover-agent
    COMPONENT agent EXCLUDE_FROM_ALL)
  drover_deb_control(agent drover-agent /etc/drover/agent.yaml)
  set(CPACK_COMPONENT_AGENT_DESCRIPTION "Drover agent: runs a device's pods with crun
drover-agent pulls OCI images, runs Kubernetes-style pods with crun and the CNI plugins,
restarts and probes them, and takes its desired state from a Drover hub over MQTT (or from
static manifests in /etc/drover/manifests). Restarting it leaves the pods running; stopping
the unit stops them gracefully.")
  # dlopen'd: libcurl (pulls, probes, enrollment), Paho (the hub link; TLS flavour with OpenSSL).
  # Run: crun, the CNI plugins (bridge, host-local, portmap) and iptables (ipMasq, portmap).
  # Read: the RuntimeDefault seccomp profile, /usr/share/containers/seccomp.json.
  # The cluster network: nft (Services, NetworkPolicy: a node without it runs no pod), wg
  # (wireguard-tools, the mesh), iproute2; wireguard-go where the kernel has no WireGuard
  # module (Debian's arm64 and Raspberry Pi kernels have it).
  set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "crun, containernetworking-plugins, iptables, \
golang-github-containers-common, libcurl4, libpaho-mqtt1.3, nftables, wireguard-tools, iproute2")
  set(CPACK_DEBIAN_AGENT_PACKAGE_RECOMMENDS "wireguard-go")
  set(CPACK_DEBIAN_AGENT_PACKAGE_SECTION admin)
endif()

if(TARGET drover-hub)
  list(APPEND DROVER_DEB_COMPONENTS hub)
  install(FILES ${DROVER_DEB_SRC}/drover-hub.service DESTINATION /lib/systemd/system
    COMPONENT hub EXCLUDE_FROM_ALL)
  install(FILES ${DROVER_DEB_SRC}/hub.env DESTINATION /etc/drover COMPONENT hub EXCLUDE_FROM_ALL)
  install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION share/doc/drover-hub
    COMPONENT hub EXCLUDE_FROM_ALL)
  drover_deb_control(hub drover-hub /etc/drover/hub.env)
  set(CPACK_COMPONENT_HUB_DESCRIPTION "Drover hub: an edge fleet's API, scheduler and controllers
drover-hub serves a Kubernetes-style REST API over HTTPS from a SQLite store, schedules pods
onto enrolled devices, runs the Deployment, DaemonSet and node controllers, and talks to the
agents through its own TLS-only Mosquitto broker, with the drover-auth plugin.")
  # Run: Mosquitto (/usr/sbin/mosquitto), which loads /usr/lib/drover/drover-auth.so.
  set(CPACK_DEBIAN_HUB_PACKAGE_DEPENDS "mosquitto, tzdata") # tzdata: CronJob time zones
  set(CPACK_DEBIAN_HUB_PACKAGE_RECOMMENDS "drover-cli")
  set(CPACK_DEBIAN_HUB_PACKAGE_SECTION admin)
endif()

if(TARGET drover)
  list(APPEND DROVER_DEB_COMPONENTS cli)
  install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION share/doc/drover-cli
    COMPONENT cli EXCLUDE_FROM_ALL)
  drover_deb_control(cli drover-cli)
  set(CPACK_COMPONENT_CLI_DESCRIPTION "Drover command-line client
drover validates Kubernetes manifests against what Drover runs, and talks to a Drover hub:
apply, get, describe, delete, scale, rollout, logs, cordon and drain, tokens and device
identities; drover flash prepares Raspberry Pi OS images for a fleet.")
  # drover flash writes into disk images with mcopy, mdir (mtools) and debugfs (e2fsprogs).
  set(CPACK_DEBIAN_CLI_PACKAGE_RECOMMENDS "mtools, e2fsprogs")
  set(CPACK_DEBIAN_CLI_PACKAGE_SECTION admin)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME drover)
set(CPACK_PACKAGE_VENDOR Drover)
set(CPACK_PACKAGE_CONTACT "Drover maintainers <maintainers@drover.invalid>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${DROVER_DEBIAN_ARCH})
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL ${DROVER_DEB_COMPONENTS})
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# /usr for the programs; the units and /etc/drover are absolute, hence DESTDIR.
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)
include(CPack)

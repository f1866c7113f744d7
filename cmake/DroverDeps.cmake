# What the build needs from the system, checked in one place before anything uses it: a missing
# dependency stops the configure step at once, naming the Debian package that provides it
# (ports/debian/install-deps installs them all), instead of failing later in a subdirectory or,
# like Paho's CMake package without OpenSSL, at generate time. The subdirectories then find the
# same things as before. Included by the top-level CMakeLists.txt after the options.

set(DROVER_MISSING "")
set(DROVER_MISSING_DEBS "")

# The Debian package for the architecture being built: libfoo-dev, or libfoo-dev:arm64 in a
# cross build (multiarch), whose packages come from `ports/debian/install-deps --cross`.
if(CMAKE_CROSSCOMPILING)
  if(CMAKE_LIBRARY_ARCHITECTURE STREQUAL "aarch64-linux-gnu")
    set(DROVER_DEB_ARCH ":arm64")
  elseif(CMAKE_LIBRARY_ARCHITECTURE STREQUAL "arm-linux-gnueabihf")
    set(DROVER_DEB_ARCH ":armhf")
  else()
    set(DROVER_DEB_ARCH ":${CMAKE_LIBRARY_ARCHITECTURE}")
  endif()
  set(DROVER_INSTALL_DEPS "ports/debian/install-deps --cross")
else()
  set(DROVER_DEB_ARCH "")
  set(DROVER_INSTALL_DEPS "ports/debian/install-deps")
endif()

# drover_missing(WHAT DEB): WHAT (what is not there, and who needs it) comes with Debian's DEB.
macro(drover_missing what deb)
  list(APPEND DROVER_MISSING "${what}: install ${deb}")
  list(APPEND DROVER_MISSING_DEBS "${deb}")
endmacro()

# drover_need_pkg(MODULE DEB WHO): a pkg-config module.
macro(drover_need_pkg module deb who)
  string(MAKE_C_IDENTIFIER "DROVER_DEP_${module}" _drover_prefix)
  pkg_check_modules(${_drover_prefix} QUIET ${module})
  if(NOT ${_drover_prefix}_FOUND)
    drover_missing("${module} (pkg-config), for ${who}" "${deb}${DROVER_DEB_ARCH}")
  endif()
endmacro()

# drover_need_lib(VAR NAME DEB WHO): a library without pkg-config file, found into VAR (the
# variable the subdirectory's own find_library uses, so it is looked up once).
macro(drover_need_lib var name deb who)
  find_library(${var} ${name})
  if(NOT ${var})
    drover_missing("lib${name}, for ${who}" "${deb}${DROVER_DEB_ARCH}")
  endif()
endmacro()

# pkg-config first: every other check but mbedTLS's goes through it.
find_package(PkgConfig QUIET)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "Missing build dependency:\n"
    "  the pkg-config program: install pkg-config (${DROVER_INSTALL_DEPS} installs everything "
    "Drover needs)")
endif()

# libdrover-shared, hence everything.
drover_need_pkg(libcjson libcjson-dev "libdrover-shared")
drover_need_pkg(yaml-0.1 libyaml-dev "libdrover-shared")
# mbedTLS 2.28 (Debian 12) has no pkg-config files.
drover_need_lib(MBEDX509_LIB mbedx509 libmbedtls-dev "libdrover-shared")
drover_need_lib(MBEDCRYPTO_LIB mbedcrypto libmbedtls-dev "libdrover-shared")
find_path(MBEDTLS_INCLUDE_DIR mbedtls/sha256.h)
if(NOT MBEDTLS_INCLUDE_DIR)
  drover_missing("mbedtls/sha256.h, for libdrover-shared" "libmbedtls-dev${DROVER_DEB_ARCH}")
endif()

if(DROVER_BUILD_AGENT)
  drover_need_pkg(libcurl libcurl4-openssl-dev "drover-agent and the CLI's hub commands")
  drover_need_pkg(zlib zlib1g-dev "drover-agent (gzip layers)")
  drover_need_pkg(libzstd libzstd-dev "drover-agent (zstd layers)")
  drover_need_lib(MBEDTLS_LIB mbedtls libmbedtls-dev "drover-agent")
endif()
if(DROVER_BUILD_HUB)
  drover_need_pkg(sqlite3 libsqlite3-dev "drover-hub")
  drover_need_pkg(libmicrohttpd libmicrohttpd-dev "drover-hub")
  # The hub's Mosquitto plugin (hub/broker/plugin): the broker's plugin API, its error codes,
  # and OpenSSL's libcrypto for the client certificate Mosquitto hands it.
  find_path(MOSQUITTO_PLUGIN_INCLUDE mosquitto_plugin.h)
  if(NOT MOSQUITTO_PLUGIN_INCLUDE)
    drover_missing("mosquitto_plugin.h, for drover-hub's broker plugin" "mosquitto-dev")
  endif()
  find_path(MOSQUITTO_INCLUDE mosquitto.h)
  if(NOT MOSQUITTO_INCLUDE)
    drover_missing("mosquitto.h, for drover-hub's broker plugin" "libmosquitto-dev${DROVER_DEB_ARCH}")
  endif()
endif()
if(DROVER_BUILD_TESTS)
  drover_need_pkg(cmocka libcmocka-dev "the unit tests (or -DDROVER_BUILD_TESTS=OFF)")
  if(DROVER_BUILD_AGENT)
    drover_need_pkg(libarchive libarchive-dev "the agent's tests, which write layers")
  endif()
endif()

# Paho MQTT C: the hub needs it; the agent without it builds for standalone use only. Its CMake
# package names OpenSSL::SSL in the link interface of its TLS flavour without finding OpenSSL,
# so OpenSSL's development files must be there too, or generating fails on a missing target.
if(DROVER_BUILD_AGENT OR DROVER_BUILD_HUB)
  find_package(OpenSSL QUIET)
  find_package(eclipse-paho-mqtt-c QUIET)
  if(NOT eclipse-paho-mqtt-c_FOUND)
    if(DROVER_BUILD_HUB)
      drover_missing("Paho MQTT C (CMake package eclipse-paho-mqtt-c), for drover-hub"
        "libpaho-mqtt-dev${DROVER_DEB_ARCH}")
    else()
      message(WARNING "Paho MQTT C not found: drover-agent is built without the hub link "
        "(hub.broker is refused); install libpaho-mqtt-dev${DROVER_DEB_ARCH} for it")
    endif()
  endif()
  if((DROVER_BUILD_HUB OR eclipse-paho-mqtt-c_FOUND) AND NOT OPENSSL_FOUND)
    drover_missing("OpenSSL (CMake's FindOpenSSL), which Paho MQTT C's CMake package names"
      "libssl-dev${DROVER_DEB_ARCH}")
  endif()
endif()

if(DROVER_MISSING)
  list(REMOVE_DUPLICATES DROVER_MISSING_DEBS)
  list(JOIN DROVER_MISSING "\n  " _drover_lines)
  list(JOIN DROVER_MISSING_DEBS " " _drover_debs)
  message(FATAL_ERROR "Missing build dependencies:\n  ${_drover_lines}\n"
    "Install them with ${DROVER_INSTALL_DEPS} (it installs everything Drover needs), or "
    "apt-get install ${_drover_debs}")
endif()

# Cross build for 32-bit ARM (Debian armhf: ARMv7 with hard float, e.g. Raspberry Pi 2/3 with a
# 32-bit OS), with Debian's cross compiler and multiarch -dev packages (ports/debian/install-deps
# --cross installs both).
#   cmake -S . -B build-armhf -DCMAKE_BUILD_TYPE=MinSizeRel \
#         -DCMAKE_TOOLCHAIN_FILE=toolchains/arm-linux-gnueabihf.cmake # MinSizeRel: a device build
# Tests run under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR), so plain `ctest` works.
set(DROVER_TARGET_TRIPLET arm-linux-gnueabihf)
set(DROVER_QEMU qemu-arm-static)

# The Debian architecture of the packages (cmake/DroverPackaging.cmake).
set(DROVER_DEBIAN_ARCH armhf)

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER ${DROVER_TARGET_TRIPLET}-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE ${DROVER_TARGET_TRIPLET})

# Where find_*() may look: Debian's cross libc (/usr/<triplet>) and the multiarch tree, in which
# CMAKE_LIBRARY_ARCHITECTURE selects lib/<triplet>. Programs (build tools) come from the host.
set(CMAKE_FIND_ROOT_PATH /usr/${DROVER_TARGET_TRIPLET} /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# Never the host's libraries or arch-specific headers: ignore every other architecture's
# multiarch directories and the unqualified ones (/usr/lib, /usr/local/lib, ...).
set(CMAKE_IGNORE_PATH /usr/local/lib /usr/local/include /usr/lib /lib /usr/lib64 /lib64
    /usr/lib32 /lib32 /usr/libx32 /libx32)
foreach(t x86_64-linux-gnu i386-linux-gnu aarch64-linux-gnu arm-linux-gnueabihf
        arm-linux-gnueabi riscv64-linux-gnu powerpc64le-linux-gnu s390x-linux-gnu)
  if(NOT t STREQUAL DROVER_TARGET_TRIPLET)
    list(APPEND CMAKE_IGNORE_PATH /usr/lib/${t} /lib/${t} /usr/include/${t}
      /usr/local/lib/${t})
  endif()
endforeach()

# pkg-config: only the target's .pc files, paths as written (multiarch needs no sysroot).
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${DROVER_TARGET_TRIPLET}/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")

# Run the target's test programs under qemu-user. -L gives them the cross libc's loader, and
# LD_LIBRARY_PATH that same build's libc: otherwise the loader finds the multiarch libc6:<arch>
# (another Debian revision; ld.so and libc.so must come from one build, or fork() crashes).
find_program(DROVER_QEMU_PATH ${DROVER_QEMU})
if(DROVER_QEMU_PATH)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${DROVER_QEMU_PATH} -L /usr/${DROVER_TARGET_TRIPLET}
    -E LD_LIBRARY_PATH=/usr/${DROVER_TARGET_TRIPLET}/lib)
endif()

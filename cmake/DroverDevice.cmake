# The device build: -DCMAKE_BUILD_TYPE=MinSizeRel is what goes onto devices and into the Debian
# packages (cmake/DroverPackaging.cmake, which also strips them). On top of CMake's -Os -DNDEBUG
# and the -ffunction-sections -fdata-sections every Drover target has (drover_target):
#  - --gc-sections at link time, so that unused functions of our code and of the static
#    libarchive reader are dropped (drover-agent asks for it in every build type);
#  - no unwind tables: Drover is C without exceptions, and nothing unwinds through its frames
#    (no C++; neither Drover nor Paho nor libcurl calls pthread_cancel or pthread_exit), so
#    .eh_frame is dead weight: 57 KiB of drover-agent's 581 KiB on arm64.
#  - link-time optimisation where the toolchain has it: inlining and dead code across files take
#    about 10 % off drover-agent (arm64: 645 KiB -> 581 KiB stripped, measured at issue 18).
#  - one LTO partition (-flto-partition=one): the whole program optimised as one unit, so that
#    inlining and the removal of dead code see every caller (issue 19: arm64 -8.6 KB of code,
#    one 16 KiB step of the file);
#  - on arm64, the agent's own code in the tiny code model (-mcmodel=tiny: code and data within
#    1 MiB, an address one ADR instead of ADRP+ADD): 4,200 of the agent's 6,400 address
#    computations (libdrover-shared's stay ADRP+ADD: the hub links it and is bigger than 1 MiB;
#    GCC keeps the model per function through LTO). Applied to everything it took 16 KB off the
#    agent. A program that outgrows 1 MiB fails to link ("relocation truncated"), it cannot run
#    wrong;
#  - on x86_64, relative relocations packed (DT_RELR, -z pack-relative-relocs): the PIE's
#    1,100-odd pointer fix-ups in a few hundred bytes instead of 24 bytes each. It needs glibc
#    2.36 (Debian 12), which the program then names (GLIBC_ABI_DT_RELR), so an older loader
#    refuses it plainly. GNU ld 2.40 does it for x86 only (it warns and ignores it on arm);
#  - on x86_64, no PLT (-fno-plt): a library call goes through its GOT entry, bound at load
#    time (like -z now), which takes the 16-byte PLT stub per imported function out of the
#    program (issue 19: -2.7 KB of the file, one 4 KiB page of padding); not on arm64, where
#    each of the 4,400 call sites would grow by one instruction;
#  - on x86_64, code not in a segment of its own (-z noseparate-code, the default of GNU ld on
#    arm64 and armhf): the headers, code and constants in one read-and-execute segment instead
#    of three, without the padding to a page boundary between them (issue 19: 526,768 ->
#    522,672 B stripped, one 4 KiB page less, under 512 KiB). What it gives up: with
#    separate-code the headers and constants are not executable, a few gadgets fewer for
#    return-oriented programming; the device agent on arm64 and armhf never had that;
#  - on x86_64, -Oz instead of -Os (GCC 12): shorter x86 encodings where -Os prefers speed
#    (constants by push/pop, no alignment of jump targets): issue 19, after NetworkPolicy
#    validation came back into the agent, 526,768 -> 518,576 B stripped, under 512 KiB again.
#    Nothing the agent does is bound by its instructions' speed; on arm64 -Oz changes nothing;
#  - on arm64, segments aligned to 16 KiB instead of the linker's default 64 KiB: the file no
#    longer carries up to 60 KiB of padding between them, and it still loads on every page size
#    Drover's devices use (4 KiB: Debian's arm64 kernels, Raspberry Pi 3/4; 16 KiB: Raspberry Pi
#    5's kernel_2712); a 64 KiB-page kernel (some server distributions) would refuse it.
# Included by the top-level CMakeLists.txt before the targets are made.
add_compile_options("$<$<CONFIG:MinSizeRel>:-fno-asynchronous-unwind-tables;-fno-unwind-tables>")
add_link_options("$<$<CONFIG:MinSizeRel>:LINKER:--gc-sections>")
add_link_options("$<$<CONFIG:MinSizeRel>:-flto-partition=one>")
include(CheckIPOSupported)
check_ipo_supported(RESULT drover_ipo OUTPUT drover_ipo_why LANGUAGES C)
if(drover_ipo)
  set(CMAKE_INTERPROCEDURAL_OPTIMIZATION_MINSIZEREL ON)
else()
  message(STATUS "no link-time optimisation for MinSizeRel: ${drover_ipo_why}")
endif()
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
  add_link_options("$<$<CONFIG:MinSizeRel>:LINKER:-z,max-page-size=16384>")
  # The tiny code model for the agent's own targets only (agent/CMakeLists.txt, shared/...):
  # the hub, which links libdrover-shared too, is bigger than 1 MiB.
  set(DROVER_AGENT_CODE_MODEL "$<$<CONFIG:MinSizeRel>:-mcmodel=tiny>")
endif()
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64)$")
  add_link_options("$<$<CONFIG:MinSizeRel>:LINKER:-z,pack-relative-relocs>")
  add_link_options("$<$<CONFIG:MinSizeRel>:LINKER:-z,noseparate-code>")
  add_compile_options("$<$<CONFIG:MinSizeRel>:-fno-plt;-Oz>")
  add_link_options("$<$<CONFIG:MinSizeRel>:-Oz>") # the link-time optimisation's level
endif()

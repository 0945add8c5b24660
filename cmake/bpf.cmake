# add_bpf_skeleton(<target> <file.bpf.c>): compiles the BPF program with clang -target bpf,
# embeds the object in a skeleton header (bpftool gen skeleton) and exports an INTERFACE
# library carrying that header's directory and libbpf.
find_program(BPF_CLANG NAMES clang clang-16 clang-15 clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
set(NW_VMLINUX_DIR ${CMAKE_SOURCE_DIR}/bpf/vmlinux/x86)

function(add_bpf_skeleton target src)
  get_filename_component(name ${src} NAME_WE)
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/bpf/${name}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/bpf/${name}.skel.h)
  file(GLOB bpf_headers ${CMAKE_SOURCE_DIR}/bpf/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/bpf
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror
            -I${NW_VMLINUX_DIR} -I${CMAKE_SOURCE_DIR}/bpf
            -c ${CMAKE_SOURCE_DIR}/${src} -o ${obj}
    DEPENDS ${CMAKE_SOURCE_DIR}/${src} ${bpf_headers}
    COMMENT "BPF ${src}")
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name}_bpf > ${skel}
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${name}.skel.h")
  add_custom_target(${target}_gen DEPENDS ${skel})
  add_library(${target} INTERFACE)
  add_dependencies(${target} ${target}_gen)
  target_include_directories(${target} INTERFACE ${CMAKE_CURRENT_BINARY_DIR}/bpf)
endfunction()

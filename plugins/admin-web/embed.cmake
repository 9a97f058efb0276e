# cmake -DIN=file -DOUT=file.c -DNAME=symbol -P embed.cmake
# Writes file's bytes as `const unsigned char NAME[]` (NUL-ended) and
# `const size_t NAME_len` (without the NUL).
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}" "/* Generated from ${IN} by embed.cmake: do not edit. */
#include <stddef.h>
const unsigned char ${NAME}[] = {
${bytes}0x00};
const size_t ${NAME}_len = ${len};
")

# Writes OUT, a C file holding the bytes of IN as the array NAME (and NAME_len): docs/verify_bundle.py
# in every evidence bundle (relay/cmd/verify_script.h). cmake -DIN=... -DOUT=... -DNAME=... -P embed.cmake
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}.tmp" "/* Made by relay/embed.cmake from ${IN}; do not edit. */\n#include <stddef.h>\n#include <stdint.h>\nconst uint8_t ${NAME}[] = {\n${bytes}};\nconst size_t ${NAME}_len = sizeof ${NAME};\n")
file(RENAME "${OUT}.tmp" "${OUT}")

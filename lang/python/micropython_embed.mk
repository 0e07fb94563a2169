# lang/python/micropython_embed.mk - generates the MicroPython embed package (py/, genhdr/,
# port/) for the Python guest: `make -f micropython_embed.mk MICROPYTHON_TOP=... HLPY_ROOT=...`
# run in a directory holding our mpconfigport.h (lang/python/lang.mk does that). The embed
# port scans only py/ for qstrs and module registrations; the extmod modules and our own
# modules are added here so the generated headers know their names.

HLPY_EXTMOD := modjson modre modrandom modtime modbinascii modhashlib modheapq modplatform modos
SRC_QSTR += $(patsubst %,$(MICROPYTHON_TOP)/extmod/%.c,$(HLPY_EXTMOD)) \
	$(patsubst %,$(HLPY_ROOT)/lang/python/%.c,mpy_port hlpy_host hlpy_json python_guest)
CFLAGS += -I$(HLPY_ROOT) -I$(HLPY_ROOT)/include -DHLPY_QSTR_SCAN

include $(MICROPYTHON_TOP)/ports/embed/embed.mk

/*
 * fuzz_rdata.c - libFuzzer target for record data in presentation format
 * (rdata.c), the text a zone file's "data" holds.
 *
 * The first byte picks the record type, the rest is the text (cut at the
 * first NUL, as a libconfig string would be).  The origin is fixed.
 */
#include <config.h>

#include "../src/rdata.h"
#include "../src/wire.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t types[] = {
	    WIRE_T_A,  WIRE_T_NS,  WIRE_T_CNAME, WIRE_T_SOA, WIRE_T_PTR,
	    WIRE_T_MX, WIRE_T_TXT, WIRE_T_AAAA,	 WIRE_T_SRV, WIRE_T_CAA,
	};
	static const uint8_t origin[] = "\4fuzz\3lab";
	static uint8_t out[RDATA_MAX];
	char why[256];

	if (size < 1 || size > FUZZ_MAX_INPUT)
		return 0;
	char *text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	uint16_t type = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	why[0] = '\0';
	int n = rdata_from_text(type, text, origin, sizeof(origin), out, why,
				sizeof(why));
	if (n > RDATA_MAX || n < -1 || (n < 0 && !why[0]))
		abort(); /* a length out of range, or a failure without a reason
			  */
	free(text);
	return 0;
}

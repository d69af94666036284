// C helpers for the Imaging module: libjpeg-turbo decoding with setjmp/longjmp error recovery
// (a libjpeg error_exit must not return, which Swift code cannot express).
#ifndef CIMAGING_SHIMS_H
#define CIMAGING_SHIMS_H

#include <stddef.h>

/// Result codes of the JPEG shim.
enum {
    IMAGING_JPEG_OK = 0,
    IMAGING_JPEG_ERROR = 1,      ///< libjpeg reported a fatal error; `message` says which.
    IMAGING_JPEG_TRUNCATED = 2,  ///< the data ended before the image was complete.
    IMAGING_JPEG_BUFFER = 3      ///< the output buffer is smaller than width*height*components.
};

/// What the JPEG header says, and the outcome of a call.
typedef struct {
    int width;
    int height;
    int components;       ///< output components: 1 (grey), 3 (RGB) or 4 (CMYK as stored, Adobe-inverted or not)
    int jpegColorSpace;   ///< libjpeg's J_COLOR_SPACE of the file
    int sawAdobeMarker;
    int code;             ///< one of IMAGING_JPEG_*
    char message[200];    ///< libjpeg's message when code == IMAGING_JPEG_ERROR
} imaging_jpeg_info;

/// Reads only the header (dimensions, components). Returns `info->code`.
int imaging_jpeg_read_header(const unsigned char *data, unsigned long size, imaging_jpeg_info *info);

/// Decodes the whole image into `out` (rows top to bottom, `components` bytes per pixel). Returns `info->code`.
int imaging_jpeg_decode(const unsigned char *data, unsigned long size,
                        unsigned char *out, size_t outSize, imaging_jpeg_info *info);

#endif

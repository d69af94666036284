// libjpeg-turbo decoding with errors turned into return codes instead of exit().
#include "CImagingShims.h"
#include <stdio.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int truncated;
} shim_error_mgr;

static void shim_error_exit(j_common_ptr cinfo) {
    shim_error_mgr *err = (shim_error_mgr *)cinfo->err;
    longjmp(err->jump, 1);
}

static void shim_emit_message(j_common_ptr cinfo, int level) {
    if (level < 0) {
        shim_error_mgr *err = (shim_error_mgr *)cinfo->err;
        if (cinfo->err->msg_code == JWRN_JPEG_EOF) err->truncated = 1;
        cinfo->err->num_warnings++;
    }
}

static void shim_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void fill_info(struct jpeg_decompress_struct *cinfo, imaging_jpeg_info *info) {
    info->width = (int)cinfo->image_width;
    info->height = (int)cinfo->image_height;
    info->jpegColorSpace = (int)cinfo->jpeg_color_space;
    info->sawAdobeMarker = cinfo->saw_Adobe_marker ? 1 : 0;
    switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE: cinfo->out_color_space = JCS_GRAYSCALE; info->components = 1; break;
    case JCS_CMYK:
    case JCS_YCCK: cinfo->out_color_space = JCS_CMYK; info->components = 4; break;
    default: cinfo->out_color_space = JCS_RGB; info->components = 3; break;
    }
}

static int run(const unsigned char *data, unsigned long size, unsigned char *out, size_t outSize,
               imaging_jpeg_info *info) {
    struct jpeg_decompress_struct cinfo;
    shim_error_mgr err;
    memset(info, 0, sizeof(*info));
    memset(&cinfo, 0, sizeof(cinfo));
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = shim_error_exit;
    err.pub.emit_message = shim_emit_message;
    err.pub.output_message = shim_output_message;
    err.truncated = 0;
    if (setjmp(err.jump)) {
        (*cinfo.err->format_message)((j_common_ptr)&cinfo, info->message);
        info->code = err.truncated ? IMAGING_JPEG_TRUNCATED : IMAGING_JPEG_ERROR;
        jpeg_destroy_decompress(&cinfo);
        return info->code;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, size);
    jpeg_read_header(&cinfo, TRUE);
    if (err.truncated) {
        info->code = IMAGING_JPEG_TRUNCATED;
        jpeg_destroy_decompress(&cinfo);
        return info->code;
    }
    fill_info(&cinfo, info);
    if (out == NULL) {
        jpeg_destroy_decompress(&cinfo);
        info->code = IMAGING_JPEG_OK;
        return info->code;
    }
    cinfo.dct_method = JDCT_ISLOW;   // libjpeg's default, as Pillow uses it
    jpeg_start_decompress(&cinfo);
    size_t rowBytes = (size_t)cinfo.output_width * (size_t)cinfo.output_components;
    if ((int)cinfo.output_components != info->components ||
        rowBytes * (size_t)cinfo.output_height > outSize) {
        jpeg_destroy_decompress(&cinfo);
        info->code = IMAGING_JPEG_BUFFER;
        return info->code;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out + rowBytes * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    if (!err.truncated) jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    info->code = err.truncated ? IMAGING_JPEG_TRUNCATED : IMAGING_JPEG_OK;
    return info->code;
}

int imaging_jpeg_read_header(const unsigned char *data, unsigned long size, imaging_jpeg_info *info) {
    return run(data, size, NULL, 0, info);
}

int imaging_jpeg_decode(const unsigned char *data, unsigned long size,
                        unsigned char *out, size_t outSize, imaging_jpeg_info *info) {
    return run(data, size, out, outSize, info);
}

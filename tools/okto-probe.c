/* tools/okto-probe.c: lists every OpenCL device okto can see, numbered the way OKTO_DEVICE takes
 * them, with what okto cares about there: out-of-order queues (lanes run side by side),
 * sub-device partitioning (a CPU lane gets cores of its own), cl_khr_command_buffer (the replay
 * fast path) and the lanes okto would use. `--json` prints the same as one JSON document.
 *
 * Exit status: 0 when at least one device exists, 1 when there is no OpenCL platform or device
 * (or a device query fails), 2 on a bad command line. */
#include <okto/okto.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)

static const char usage[] =
    "usage: okto-probe [--json] [--help]\n"
    "\n"
    "Lists every OpenCL platform and device, numbered as OKTO_DEVICE takes them, with the\n"
    "properties okto uses (out-of-order queues, sub-device partitioning, cl_khr_command_buffer)\n"
    "and the lanes okto would use there. The default device is marked.\n"
    "\n"
    "  --json   print one JSON document instead of text\n"
    "  --help   print this help and exit\n"
    "\n"
    "Exit status: 0 when a device was found, 1 when none was (or a query failed), 2 on a bad\n"
    "command line.\n";

/* Everything the probe reports about one device. */
typedef struct probe_dev {
    int index;
    int is_default;
    char *platform;
    char *name;
    char *vendor;
    char *version;   /* CL_DEVICE_VERSION as the driver writes it */
    char opencl[16]; /* "3.0": the <major.minor> of "OpenCL <major.minor> <vendor info>" */
    cl_device_type type;
    cl_uint compute_units;
    cl_uint max_clock_mhz;
    cl_ulong global_mem;
    cl_ulong max_alloc;
    int out_of_order;
    int part_equally, part_by_counts, part_by_affinity;
    int command_buffer;
    int compute_lanes, copy_lanes;
    int host_lane;        /* BLAS threads per host-lane task, 0: none */
    const char *host_why; /* why there is none, or the CBLAS */
} probe_dev;

/* The host lane a context on this device would have (lib/lane_host.c's rule: a PoCL CPU
 * device, a build with CBLAS, OKTO_HOST_LANE not 0; OKTO_HOST_THREADS threads per task,
 * default 1). */
static void probe_host_lane(probe_dev *d)
{
    const char *e = getenv("OKTO_HOST_LANE"), *th = getenv("OKTO_HOST_THREADS");
    d->host_lane = 0;
    if (!okto_host_blas())
        d->host_why = "none: built without CBLAS";
    else if (!(d->type & CL_DEVICE_TYPE_CPU))
        d->host_why = "none: not a CPU device";
    else if (!d->platform || !strstr(d->platform, "Portable Computing Language"))
        d->host_why = "none: not a PoCL device (the host lane needs PoCL's in-place host memory)";
    else if (e && strcmp(e, "0") == 0)
        d->host_why = "off: OKTO_HOST_LANE=0";
    else {
        long v = th && *th ? strtol(th, NULL, 10) : 1;
        d->host_lane = v >= 1 && v <= 64 ? (int)v : 1;
        d->host_why = okto_host_blas();
    }
}

/* ---- OpenCL queries: every call checked; a failure names the call and the parameter ---- */

static const char *cl_err_name(cl_int err)
{
    switch (err) {
    case CL_INVALID_VALUE: return "CL_INVALID_VALUE";
    case CL_INVALID_DEVICE: return "CL_INVALID_DEVICE";
    case CL_INVALID_PLATFORM: return "CL_INVALID_PLATFORM";
    case CL_OUT_OF_RESOURCES: return "CL_OUT_OF_RESOURCES";
    case CL_OUT_OF_HOST_MEMORY: return "CL_OUT_OF_HOST_MEMORY";
    }
    return "CL error";
}

static int query_failed(int index, const char *call, const char *param, cl_int err)
{
    fprintf(stderr, "okto-probe: device %d: %s(%s) failed: %s (%d)\n", index, call, param,
            cl_err_name(err), (int)err);
    return -1;
}

/* A string parameter, malloc'd, trailing blanks dropped (some drivers pad names). */
static int dev_string(cl_device_id dev, cl_device_info param, const char *pname, int index,
                      char **out)
{
    size_t size = 0;
    cl_int err = clGetDeviceInfo(dev, param, 0, NULL, &size);
    if (err != CL_SUCCESS)
        return query_failed(index, "clGetDeviceInfo", pname, err);
    char *s = calloc(size + 1, 1);
    if (!s) {
        fprintf(stderr, "okto-probe: out of memory\n");
        return -1;
    }
    if ((err = clGetDeviceInfo(dev, param, size, s, NULL)) != CL_SUCCESS) {
        free(s);
        return query_failed(index, "clGetDeviceInfo", pname, err);
    }
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n'))
        s[--n] = '\0';
    *out = s;
    return 0;
}

static int platform_string(cl_platform_id plat, cl_platform_info param, const char *pname,
                           int index, char **out)
{
    size_t size = 0;
    cl_int err = clGetPlatformInfo(plat, param, 0, NULL, &size);
    if (err != CL_SUCCESS)
        return query_failed(index, "clGetPlatformInfo", pname, err);
    char *s = calloc(size + 1, 1);
    if (!s) {
        fprintf(stderr, "okto-probe: out of memory\n");
        return -1;
    }
    if ((err = clGetPlatformInfo(plat, param, size, s, NULL)) != CL_SUCCESS) {
        free(s);
        return query_failed(index, "clGetPlatformInfo", pname, err);
    }
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ')
        s[--n] = '\0';
    *out = s;
    return 0;
}

#define DEV_VALUE(dev, param, var, index)                                                          \
    do {                                                                                           \
        cl_int err_ = clGetDeviceInfo((dev), (param), sizeof(var), &(var), NULL);                  \
        if (err_ != CL_SUCCESS)                                                                    \
            return query_failed((index), "clGetDeviceInfo", #param, err_);                         \
    } while (0)

/* Whether a space-separated extension list holds exactly this name. */
static int has_extension(const char *list, const char *ext)
{
    size_t len = strlen(ext);
    for (const char *p = list; (p = strstr(p, ext)) != NULL; p += len) {
        int starts = p == list || p[-1] == ' ';
        int ends = p[len] == '\0' || p[len] == ' ';
        if (starts && ends)
            return 1;
    }
    return 0;
}

static int probe_device(const okto_device_info *info, probe_dev *d)
{
    cl_device_id dev = info->device;
    int i = info->index;
    memset(d, 0, sizeof *d);
    d->index = i;
    d->is_default = info->is_default;
    d->compute_lanes = info->compute_lanes;
    d->copy_lanes = info->copy_lanes;

    if (platform_string(info->platform, CL_PLATFORM_NAME, "CL_PLATFORM_NAME", i, &d->platform) ||
        dev_string(dev, CL_DEVICE_NAME, "CL_DEVICE_NAME", i, &d->name) ||
        dev_string(dev, CL_DEVICE_VENDOR, "CL_DEVICE_VENDOR", i, &d->vendor) ||
        dev_string(dev, CL_DEVICE_VERSION, "CL_DEVICE_VERSION", i, &d->version))
        return -1;
    int major = 0, minor = 0;
    if (sscanf(d->version, "OpenCL %d.%d", &major, &minor) == 2)
        snprintf(d->opencl, sizeof d->opencl, "%d.%d", major, minor);
    else
        snprintf(d->opencl, sizeof d->opencl, "unknown");

    DEV_VALUE(dev, CL_DEVICE_TYPE, d->type, i);
    DEV_VALUE(dev, CL_DEVICE_MAX_COMPUTE_UNITS, d->compute_units, i);
    DEV_VALUE(dev, CL_DEVICE_MAX_CLOCK_FREQUENCY, d->max_clock_mhz, i);
    DEV_VALUE(dev, CL_DEVICE_GLOBAL_MEM_SIZE, d->global_mem, i);
    DEV_VALUE(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, d->max_alloc, i);

    cl_command_queue_properties qprops = 0;
    DEV_VALUE(dev, CL_DEVICE_QUEUE_PROPERTIES, qprops, i);
    d->out_of_order = (qprops & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE) != 0;

    /* OpenCL 1.2+: a zero-terminated list; a lone 0 means the device cannot be partitioned. */
    size_t psize = 0;
    cl_int err = clGetDeviceInfo(dev, CL_DEVICE_PARTITION_PROPERTIES, 0, NULL, &psize);
    if (err != CL_SUCCESS)
        return query_failed(i, "clGetDeviceInfo", "CL_DEVICE_PARTITION_PROPERTIES", err);
    if (psize >= sizeof(cl_device_partition_property)) {
        size_t n = psize / sizeof(cl_device_partition_property);
        cl_device_partition_property *pp = calloc(n, sizeof *pp);
        if (!pp) {
            fprintf(stderr, "okto-probe: out of memory\n");
            return -1;
        }
        err = clGetDeviceInfo(dev, CL_DEVICE_PARTITION_PROPERTIES, n * sizeof *pp, pp, NULL);
        if (err != CL_SUCCESS) {
            free(pp);
            return query_failed(i, "clGetDeviceInfo", "CL_DEVICE_PARTITION_PROPERTIES", err);
        }
        for (size_t k = 0; k < n && pp[k] != 0; k++) {
            d->part_equally |= pp[k] == CL_DEVICE_PARTITION_EQUALLY;
            d->part_by_counts |= pp[k] == CL_DEVICE_PARTITION_BY_COUNTS;
            d->part_by_affinity |= pp[k] == CL_DEVICE_PARTITION_BY_AFFINITY_DOMAIN;
        }
        free(pp);
    }

    char *ext = NULL;
    if (dev_string(dev, CL_DEVICE_EXTENSIONS, "CL_DEVICE_EXTENSIONS", i, &ext))
        return -1;
    d->command_buffer = has_extension(ext, "cl_khr_command_buffer");
    free(ext);
    probe_host_lane(d);
    return 0;
}

static void probe_dev_free(probe_dev *d)
{
    free(d->platform);
    free(d->name);
    free(d->vendor);
    free(d->version);
}

/* "CPU", "GPU", "ACCELERATOR", "CUSTOM", joined with '|' when a device has several bits. */
static void type_string(cl_device_type t, char *buf, size_t cap)
{
    static const struct {
        cl_device_type bit;
        const char *name;
    } names[] = {
        {CL_DEVICE_TYPE_CPU, "CPU"},
        {CL_DEVICE_TYPE_GPU, "GPU"},
        {CL_DEVICE_TYPE_ACCELERATOR, "ACCELERATOR"},
        {CL_DEVICE_TYPE_CUSTOM, "CUSTOM"},
        {CL_DEVICE_TYPE_DEFAULT, "DEFAULT"},
    };
    size_t off = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        if (!(t & names[k].bit) || off >= cap)
            continue;
        off += (size_t)snprintf(buf + off, cap - off, "%s%s", off ? "|" : "", names[k].name);
    }
    if (!buf[0])
        snprintf(buf, cap, "UNKNOWN");
}

/* ---- text output ------------------------------------------------------------------------ */

static void bytes_human(cl_ulong b, char *buf, size_t cap)
{
    static const char *units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%" PRIu64 " bytes", (uint64_t)b);
    else
        snprintf(buf, cap, "%.2f %s (%" PRIu64 " bytes)", v, units[u], (uint64_t)b);
}

static void print_text(const probe_dev *devs, int n)
{
    printf("okto %s: %d OpenCL device%s\n", okto_version(), n, n == 1 ? "" : "s");
    for (int i = 0; i < n; i++) {
        const probe_dev *d = &devs[i];
        char type[64], gmem[64], amem[64], part[64] = "";
        type_string(d->type, type, sizeof type);
        bytes_human(d->global_mem, gmem, sizeof gmem);
        bytes_human(d->max_alloc, amem, sizeof amem);
        if (d->part_equally)
            strcat(part, "equally");
        if (d->part_by_counts)
            strcat(strcat(part, part[0] ? ", " : ""), "by counts");
        if (d->part_by_affinity)
            strcat(strcat(part, part[0] ? ", " : ""), "by affinity domain");
        if (!part[0])
            strcat(part, "none");

        printf("\n[%d] %s%s\n", d->index, d->name, d->is_default ? "  (default)" : "");
        printf("    platform        %s\n", d->platform);
        printf("    vendor          %s\n", d->vendor);
        printf("    type            %s\n", type);
        printf("    OpenCL          %s (%s)\n", d->opencl, d->version);
        printf("    compute units   %u\n", (unsigned)d->compute_units);
        printf("    max clock       %u MHz\n", (unsigned)d->max_clock_mhz);
        printf("    global memory   %s\n", gmem);
        printf("    max allocation  %s\n", amem);
        printf("    out-of-order    %s\n", d->out_of_order ? "yes" : "no");
        printf("    sub-devices     %s\n", part);
        printf("    command buffer  %s\n",
               d->command_buffer ? "yes (cl_khr_command_buffer)" : "no");
        printf("    okto lanes      %d compute + %d copy\n", d->compute_lanes, d->copy_lanes);
        if (d->host_lane)
            printf("    host lane       matmuls on the lane threads, %d BLAS thread%s per task "
                   "(%s)\n",
                   d->host_lane, d->host_lane == 1 ? "" : "s", d->host_why);
        else
            printf("    host lane       %s\n", d->host_why);
    }
}

/* ---- JSON output ------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s, or 0 when the bytes there are not one. */
static size_t utf8_len(const unsigned char *s)
{
    size_t n;
    unsigned int cp;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t k = 1; k < n; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    static const unsigned int min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* A JSON string: quotes, backslashes and control characters escaped; bytes that are not valid
 * UTF-8 (a driver may hand back anything) become U+FFFD so the document always parses. */
static void json_string(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    putchar('"');
    while (*s) {
        unsigned char c = *s;
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
            s++;
        } else if (c == '\n') {
            fputs("\\n", stdout);
            s++;
        } else if (c == '\t') {
            fputs("\\t", stdout);
            s++;
        } else if (c == '\r') {
            fputs("\\r", stdout);
            s++;
        } else if (c < 0x20 || c == 0x7f) {
            printf("\\u%04x", c);
            s++;
        } else {
            size_t n = utf8_len(s);
            if (n == 0) {
                fputs("\\ufffd", stdout);
                s++;
            } else {
                fwrite(s, 1, n, stdout);
                s += n;
            }
        }
    }
    putchar('"');
}

static void print_json(const probe_dev *devs, int n)
{
    printf("{\n  \"okto_version\": \"%s\",\n  \"devices\": [", okto_version());
    for (int i = 0; i < n; i++) {
        const probe_dev *d = &devs[i];
        char type[64];
        type_string(d->type, type, sizeof type);
        printf("%s\n    {\n", i ? "," : "");
        printf("      \"index\": %d,\n", d->index);
        printf("      \"platform\": ");
        json_string(d->platform);
        printf(",\n      \"name\": ");
        json_string(d->name);
        printf(",\n      \"vendor\": ");
        json_string(d->vendor);
        printf(",\n      \"type\": ");
        json_string(type);
        printf(",\n      \"opencl_version\": ");
        json_string(d->opencl);
        printf(",\n      \"device_version\": ");
        json_string(d->version);
        printf(",\n      \"compute_units\": %u,\n", (unsigned)d->compute_units);
        printf("      \"max_clock_mhz\": %u,\n", (unsigned)d->max_clock_mhz);
        printf("      \"global_mem_bytes\": %" PRIu64 ",\n", (uint64_t)d->global_mem);
        printf("      \"max_alloc_bytes\": %" PRIu64 ",\n", (uint64_t)d->max_alloc);
        printf("      \"out_of_order\": %s,\n", d->out_of_order ? "true" : "false");
        printf("      \"partition\": [");
        const char *sep = "";
        if (d->part_equally) {
            printf("%s\"equally\"", sep);
            sep = ", ";
        }
        if (d->part_by_counts) {
            printf("%s\"by_counts\"", sep);
            sep = ", ";
        }
        if (d->part_by_affinity)
            printf("%s\"by_affinity_domain\"", sep);
        printf("],\n");
        printf("      \"command_buffer\": %s,\n", d->command_buffer ? "true" : "false");
        printf("      \"lanes\": {\"compute\": %d, \"copy\": %d},\n", d->compute_lanes,
               d->copy_lanes);
        printf("      \"host_lane\": {\"threads\": %d, \"what\": \"", d->host_lane);
        for (const char *c = d->host_why; c && *c; c++)
            if (*c == '"' || *c == '\\')
                printf("\\%c", *c);
            else if ((unsigned char)*c >= 0x20)
                putchar(*c);
        printf("\"},\n");
        printf("      \"default\": %s\n    }", d->is_default ? "true" : "false");
    }
    printf("%s]\n}\n", n ? "\n  " : "");
}

/* ---- main ------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    int json = 0;
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "okto-probe: unknown argument '%s'\n\n%s", argv[a], usage);
            return 2;
        }
    }

    okto_device_info *infos = NULL;
    int n = 0;
    okto_status s = okto_devices(&infos, &n);
    if (s != OKTO_OK) {
        const char *why = okto_last_error(NULL);
        fprintf(stderr, "okto-probe: %s\n", why[0] ? why : okto_status_str(s));
        return 1;
    }
    probe_dev *devs = calloc((size_t)n, sizeof *devs);
    if (!devs) {
        okto_devices_free(infos);
        fprintf(stderr, "okto-probe: out of memory\n");
        return 1;
    }
    int rc = 0;
    int probed = 0;
    for (; probed < n; probed++) {
        if (probe_device(&infos[probed], &devs[probed]) != 0) {
            probe_dev_free(&devs[probed]);
            rc = 1;
            break;
        }
    }
    if (rc == 0) {
        if (json)
            print_json(devs, n);
        else
            print_text(devs, n);
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "okto-probe: error writing the output\n");
            rc = 1;
        }
    }
    for (int i = 0; i < probed; i++)
        probe_dev_free(&devs[i]);
    free(devs);
    okto_devices_free(infos);
    return rc;
}

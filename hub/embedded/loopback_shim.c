/* Preloaded into the embedded Orthanc (LD_PRELOAD) for two reasons.
 *
 * 1. Orthanc 1.10 has no bind-address setting and listens on every interface. Patient
 *    images must not be reachable from the network in a demo or a test, so a bind()
 *    to the IPv4 or IPv6 wildcard address is turned into a bind() to loopback.
 * 2. Debian's civetweb starts its HTTP workers with 100 KiB stacks, and GDCM's codecs
 *    need more: decoding or transcoding then crashes the whole archive. Any thread
 *    stack requested below 8 MiB is raised to 8 MiB.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_function)(int, const struct sockaddr *, socklen_t);
typedef int (*stack_size_function)(pthread_attr_t *, size_t);

int bind(int fd, const struct sockaddr *address, socklen_t length)
{
    static bind_function next_bind;
    if (next_bind == NULL)
        next_bind = (bind_function)dlsym(RTLD_NEXT, "bind");

    if (address != NULL && address->sa_family == AF_INET
            && length >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in ipv4;
        memcpy(&ipv4, address, sizeof ipv4);
        if (ipv4.sin_addr.s_addr == htonl(INADDR_ANY)) {
            ipv4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            return next_bind(fd, (const struct sockaddr *)&ipv4, sizeof ipv4);
        }
    }
    if (address != NULL && address->sa_family == AF_INET6
            && length >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 ipv6;
        memcpy(&ipv6, address, sizeof ipv6);
        if (memcmp(&ipv6.sin6_addr, &in6addr_any, sizeof ipv6.sin6_addr) == 0) {
            ipv6.sin6_addr = in6addr_loopback;
            return next_bind(fd, (const struct sockaddr *)&ipv6, sizeof ipv6);
        }
    }
    return next_bind(fd, address, length);
}

int pthread_attr_setstacksize(pthread_attr_t *attributes, size_t size)
{
    static stack_size_function next_set;
    const size_t floor = (size_t)8 << 20;
    if (next_set == NULL)
        next_set = (stack_size_function)dlsym(RTLD_NEXT, "pthread_attr_setstacksize");
    return next_set(attributes, size < floor ? floor : size);
}

/*
 * hnswresident.c — the prewarm worker keeps every shared graph file mapped.
 *
 * A graph file's pages live in the kernel's page cache, shared by every backend that maps the
 * file. A backend's first touches fault pages into its page tables, and the kernel's
 * fault-around maps up to 64 kB of cached neighbours with each fault. Summed PSS (the fair
 * share of every mapped page, summed over the server's processes) counts a file page once
 * when at least one process maps it, and charges it to whoever maps it first. So without a
 * long-lived mapping, a fresh connection that runs one query is charged for graph pages that
 * nobody else happened to map yet, although they were in memory already (the build wrote
 * them), and when the last backend that mapped a page exits the page is unmapped and only
 * kept by the cache's LRU.
 *
 * The prewarm worker therefore stays alive and, once a second, maps every *.graph file in the
 * graph directory read-only and populates its page tables for the pages the page cache holds
 * (mincore, then MADV_POPULATE_READ on each resident run: no page is read from disk and no
 * unwritten spare block is allocated, and a page that vanished meanwhile is an error return,
 * not SIGBUS). The node's graph memory then shows once, in this process, as shared_buffers
 * does for pgvector, and a new connection adds only its private memory. Mapped pages are also
 * referenced pages, which the kernel prefers to keep over unmapped cache.
 *
 * A file replaced (rebuilt and renamed over) or removed is unmapped at the next pass, so the
 * worker holds a deleted file's blocks for at most a second. The worker never writes a file,
 * never trusts its contents and never loads the Go engine.
 */
#include "hnsw.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "utils/memutils.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22	/* Linux 5.14 */
#endif

#define RESIDENT_MAX_FILES 256

typedef struct ResidentFile
{
	dev_t		dev;
	ino_t		ino;
	char	   *base;
	size_t		size;
	unsigned char *resident;	/* mincore of the previous pass: 1 = populated then */
	bool		seen;
} ResidentFile;

static ResidentFile files[RESIDENT_MAX_FILES];
static int	nfiles = 0;
static bool populate_unsupported = false;

static void
forget(int i)
{
	munmap(files[i].base, files[i].size);
	pfree(files[i].resident);
	files[i] = files[--nfiles];
}

/* Maps path (whose stat is st); false when it cannot be mapped now. */
static bool
remember(const char *path, struct stat *st)
{
	int			fd;
	char	   *base;
	size_t		pages;

	if (nfiles >= RESIDENT_MAX_FILES || st->st_size <= 0)
		return false;
	fd = open(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
		return false;
	base = mmap(NULL, st->st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (base == MAP_FAILED)
		return false;
	/* Only resident pages are populated; no readahead around them either. */
	(void) madvise(base, st->st_size, MADV_RANDOM);
	pages = (st->st_size + getpagesize() - 1) / getpagesize();
	files[nfiles].dev = st->st_dev;
	files[nfiles].ino = st->st_ino;
	files[nfiles].base = base;
	files[nfiles].size = st->st_size;
	files[nfiles].resident = MemoryContextAllocZero(TopMemoryContext, pages);
	files[nfiles].seen = true;
	nfiles++;
	return true;
}

/* Populates the page tables for f's pages the page cache holds that the last pass did not. */
static void
populate(ResidentFile *f)
{
	size_t		page = getpagesize();
	size_t		pages = (f->size + page - 1) / page;
	unsigned char *now = palloc(pages);
	size_t		i = 0;

	if (mincore(f->base, f->size, now) != 0)
	{
		pfree(now);
		return;
	}
	while (i < pages && !populate_unsupported)
	{
		size_t		start;

		if (!(now[i] & 1) || (f->resident[i] & 1))
		{
			i++;
			continue;
		}
		start = i;
		while (i < pages && (now[i] & 1) && !(f->resident[i] & 1))
			i++;
		if (madvise(f->base + start * page, (i - start) * page, MADV_POPULATE_READ) != 0 && errno == EINVAL)
			populate_unsupported = true;	/* an older kernel: keep the mappings only */
	}
	memcpy(f->resident, now, pages);
	pfree(now);
}

/*
 * One pass over the graph directory (relative to the data directory, the worker's cwd):
 * map new files, drop replaced or removed ones, populate what became resident.
 */
void
bhnsw_keep_graphs_resident(void)
{
	const char *dir = bhnsw_graph_directory();
	DIR		   *d = opendir(dir);
	struct dirent *de;
	int			i;

	for (i = 0; i < nfiles; i++)
		files[i].seen = false;
	if (d != NULL)
	{
		while ((de = readdir(d)) != NULL)
		{
			size_t		len = strlen(de->d_name);
			char	   *path;
			struct stat st;
			bool		known = false;

			if (len < 7 || strcmp(de->d_name + len - 6, ".graph") != 0)
				continue;
			path = psprintf("%s/%s", dir, de->d_name);
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			{
				for (i = 0; i < nfiles; i++)
				{
					if (files[i].dev == st.st_dev && files[i].ino == st.st_ino &&
						files[i].size == (size_t) st.st_size)
					{
						files[i].seen = known = true;
						break;
					}
				}
				if (!known)
					(void) remember(path, &st);
			}
			pfree(path);
		}
		closedir(d);
	}
	for (i = nfiles - 1; i >= 0; i--)
		if (!files[i].seen)
			forget(i);
	for (i = 0; i < nfiles; i++)
		populate(&files[i]);
}


/*
 * hnswpage.h — the on-disk layout of a borealis_hnsw index.
 *
 * Block 0 is the meta page. Every other block holds element tuples and neighbour tuples,
 * appended in element-id order (a build writes ids 0..n-1, inserts append at the end). Each
 * element has a dense uint32 id, the id the Go graph uses; its element tuple records where its
 * neighbour tuple is (the same page when both fit, else the next one). Tuples never move, so a
 * backend's cache maps id -> (element tuple, neighbour tuple, heap TID) once and keeps it.
 *
 * The meta page carries a change counter, bumped by every insert and VACUUM, and a ring of the
 * last changes (counter, element id, element tuple). A backend whose cache is at counter c
 * replays the entries after c when the ring still holds all of them, and reloads the whole
 * graph otherwise; WAL replay rewrites the same pages, so caches on a standby follow the same way.
 */
#ifndef BOREALIS_HNSWPAGE_H
#define BOREALIS_HNSWPAGE_H

#include "postgres.h"

#include "storage/block.h"
#include "storage/bufpage.h"
#include "storage/itemptr.h"

#include "hnswtypes.h"

#define BHNSW_MAGIC				0xB0EA1150
#define BHNSW_LAYOUT_VERSION	2	/* 2: compact sparsevec element tuples (hnswtypes.c) */
#define BHNSW_LAYOUT_MIN_VERSION 1	/* version 1 pages are read as they are */
#define BHNSW_METAPAGE_BLKNO	0
#define BHNSW_PAGE_ID			0xB0EA
#define BHNSW_MAX_LEVEL			31
#define BHNSW_LOG_SIZE			480

/* Tuple kinds (first byte of every tuple). */
#define BHNSW_ELEMENT_TUPLE		1
#define BHNSW_NEIGHBOR_TUPLE	2
#define BHNSW_CHUNK_TUPLE		3	/* part of a code too large for its element tuple */

/*
 * An element's code up to this many words lives in its element tuple (vector up to 2,000
 * dimensions, halfvec 4,000, bit 64,000, sparsevec 1,000 non-zeros: one page with its
 * neighbours). A larger one (vector and halfvec up to 16,000 dimensions) lives in chunk tuples,
 * one per page, BHNSW_CHUNK_WORDS words each, chained by TID; its element tuple has
 * BHNSW_ELEMENT_EXTERNAL set and the first chunk's TID where the code would be (hnswlarge.c).
 */
#define BHNSW_INLINE_MAX_WORDS	2001
#define BHNSW_CHUNK_WORDS		2000
#define BHNSW_ELEMENT_EXTERNAL	0x01

#define BHNSW_NO_NEIGHBOR		0xFFFFFFFF

/* One change: element id's element tuple is at (blkno, offno), changed by change `counter`. */
typedef struct BhnswLogEntry
{
	uint32		counter;
	uint32		id;
	BlockNumber blkno;
	OffsetNumber offno;
	uint16		unused;
} BhnswLogEntry;

typedef struct BhnswMetaPageData
{
	uint32		magic;
	uint32		version;
	uint32		dims;			/* 32-bit words of an element's code (hnswtypes.h) */
	uint16		metric;			/* the kind: metric | element type << 8 (hnswtypes.h) */
	uint16		m;
	uint16		ef_construction;
	int16		entry_level;	/* -1: empty graph */
	uint32		entry_id;
	uint32		element_count;	/* ids handed out; the next element gets this id */
	uint32		counter;		/* bumped by every insert and vacuum; 1 after a build */
	uint32		log_complete_from;	/* the ring holds every change with counter >= this */
	uint32		log_head;		/* next ring slot to write */
	BlockNumber insert_page;	/* where inserts append */
	uint32		build_id;		/* random per build: a cache never outlives its index */
	BhnswLogEntry log[BHNSW_LOG_SIZE];
} BhnswMetaPageData;

typedef BhnswMetaPageData *BhnswMetaPage;

typedef struct BhnswPageOpaqueData
{
	uint16		page_id;		/* BHNSW_PAGE_ID, for pg_filedump and the checker */
	uint16		unused;
	uint32		unused2;
} BhnswPageOpaqueData;

typedef struct BhnswElementTupleData
{
	uint8		type;			/* BHNSW_ELEMENT_TUPLE */
	uint8		level;
	uint8		deleted;
	uint8		flags;			/* BHNSW_ELEMENT_EXTERNAL */
	uint32		id;
	ItemPointerData heaptid;
	ItemPointerData neighbortid;
	uint16		dims;			/* words of vec: the element's code (hnswtypes.h); for a
								 * sparsevec, its compact form, 1 + 2n words for n non-zeros
								 * (bhnsw_tuple_code) */
	uint16		unused2;
	float		vec[FLEXIBLE_ARRAY_MEMBER];
} BhnswElementTupleData;

typedef BhnswElementTupleData *BhnswElementTuple;

/* Neighbour lists: 2*m slots for layer 0, then m per upper layer; unused slots are NO_NEIGHBOR. */
typedef struct BhnswNeighborTupleData
{
	uint8		type;			/* BHNSW_NEIGHBOR_TUPLE */
	uint8		level;
	uint16		nslots;
	uint32		id;
	uint32		slots[FLEXIBLE_ARRAY_MEMBER];
} BhnswNeighborTupleData;

typedef BhnswNeighborTupleData *BhnswNeighborTuple;

/* A part of a large code: words [offset, offset + nwords) of element id's code. */
typedef struct BhnswChunkTupleData
{
	uint8		type;			/* BHNSW_CHUNK_TUPLE */
	uint8		unused;
	uint16		nwords;
	uint32		id;
	uint32		offset;
	ItemPointerData next;		/* the next chunk; invalid for the last */
	uint16		unused2;
	float		words[FLEXIBLE_ARRAY_MEMBER];
} BhnswChunkTupleData;

typedef BhnswChunkTupleData *BhnswChunkTuple;

#define BhnswPageGetMeta(page)	((BhnswMetaPage) PageGetContents(page))
#define BhnswPageGetOpaque(page) ((BhnswPageOpaqueData *) PageGetSpecialPointer(page))
#define BHNSW_ELEMENT_SIZE(dims) MAXALIGN(offsetof(BhnswElementTupleData, vec) + sizeof(float) * (dims))
#define BHNSW_NSLOTS(m, level)	(2 * (m) + (level) * (m))
#define BHNSW_NEIGHBOR_SIZE(m, level) MAXALIGN(offsetof(BhnswNeighborTupleData, slots) + sizeof(uint32) * BHNSW_NSLOTS(m, level))

#endif							/* BOREALIS_HNSWPAGE_H */

/*
 * hnswquant.h — the values of borealis_hnsw's `quantization` reloption. The one place these
 * numbers live: the C module uses them, and the Go engine includes this header through cgo.
 * Pure C with no PostgreSQL types, so cgo can read it.
 */
#ifndef BOREALIS_HNSWQUANT_H
#define BOREALIS_HNSWQUANT_H

#define BHNSW_QUANT_AUTO	0	/* int8 from 768 dimensions, else none (the engine decides) */
#define BHNSW_QUANT_NONE	1	/* traverse with float32 distances */
#define BHNSW_QUANT_INT8	2	/* int8 codes, a scale per vector; exact rescoring */
#define BHNSW_QUANT_BINARY	3	/* sign bits, Hamming traversal; exact rescoring */

#endif							/* BOREALIS_HNSWQUANT_H */

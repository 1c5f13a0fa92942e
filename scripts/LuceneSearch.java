// Lucene's own BM25 scores, to check the Python BM25 against (tests/ir/test_bm25_index.py). Searches an index
// built by Anserini's IndexCollection as Anserini's SearchCollection -bm25 does: the analyzer Anserini picks for
// the language (LuceneTokens.java), its BagOfWordsQueryGenerator's query (one SHOULD clause per distinct token,
// boosted by its count; with fields, one such query per field, boosted by the field's weight), Lucene's
// BM25Similarity, equal scores ordered by document id. Unlike SearchCollection it prints each hit's score as the
// float Lucene computed, not rounded to 1e-4 with tied scores lowered by 1e-6.
// It uses Lucene's classes only, so that any javac from 11 on compiles it against Anserini's fatjar:
//   javac -cp anserini-*-fatjar.jar -d classes scripts/LuceneAnalyzers.java scripts/LuceneSearch.java
//   java -cp anserini-*-fatjar.jar:classes LuceneSearch INDEX LANGUAGE K1 B HITS [FIELD=WEIGHT ...] \
//     < topics.tsv > hits.tsv
// (Java 21+ runs it; Java 21+ also runs the .java file directly, without javac). FIELD=WEIGHT as
// SearchCollection's -fields (default: contents alone). Each input line is "query_id<TAB>text"; each output line
// "query_id<TAB>doc_id<TAB>score", best first, the score as Java's Float.toString (it reads back as that float).
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.Term;
import org.apache.lucene.search.BooleanClause;
import org.apache.lucene.search.BooleanQuery;
import org.apache.lucene.search.BoostQuery;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.Sort;
import org.apache.lucene.search.SortField;
import org.apache.lucene.search.TermQuery;
import org.apache.lucene.search.similarities.BM25Similarity;
import org.apache.lucene.store.FSDirectory;

public class LuceneSearch {
  public static void main(String[] args) throws Exception {
    IndexSearcher searcher = new IndexSearcher(DirectoryReader.open(FSDirectory.open(Paths.get(args[0]))));
    Analyzer analyzer = LuceneAnalyzers.forLanguage(args[1]);
    searcher.setSimilarity(new BM25Similarity(Float.parseFloat(args[2]), Float.parseFloat(args[3])));
    int hits = Integer.parseInt(args[4]);
    Map<String, Float> fields = new LinkedHashMap<>();
    for (int i = 5; i < args.length; i++) {
      String[] field = args[i].split("=");
      fields.put(field[0], Float.parseFloat(field[1]));
    }
    if (fields.isEmpty()) {
      fields.put("contents", 1f);
    }
    Sort byScoreThenId = new Sort(SortField.FIELD_SCORE, new SortField("id", SortField.Type.STRING_VAL));
    BufferedReader lines = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    StringBuilder out = new StringBuilder();
    for (String line; (line = lines.readLine()) != null; ) {
      String[] topic = line.split("\t", 2);
      Map<String, Long> counts = new LinkedHashMap<>();
      for (String token : LuceneAnalyzers.tokens(analyzer, topic[1])) {
        counts.merge(token, 1L, Long::sum);
      }
      BooleanQuery.Builder query = new BooleanQuery.Builder();
      for (Map.Entry<String, Float> field : fields.entrySet()) {
        BooleanQuery.Builder terms = new BooleanQuery.Builder();
        for (Map.Entry<String, Long> count : counts.entrySet()) {
          Query term = new TermQuery(new Term(field.getKey(), count.getKey()));
          terms.add(new BoostQuery(term, (float) count.getValue()), BooleanClause.Occur.SHOULD);
        }
        query.add(new BoostQuery(terms.build(), field.getValue()), BooleanClause.Occur.SHOULD);
      }
      Query built = fields.size() == 1 ? ((BooleanQuery) query.build()).clauses().get(0).getQuery() : query.build();
      for (ScoreDoc hit : searcher.search(built, hits, byScoreThenId, true).scoreDocs) {
        String id = searcher.storedFields().document(hit.doc).get("id");
        out.append(topic[0]).append('\t').append(id).append('\t').append(hit.score).append('\n');
      }
    }
    System.out.print(out);
  }
}

"""Fixed English sentences for measuring a quantized sentence encoder (MiniLM).

EVALUATION: the sentences on which the cosine similarity of int8 to float32 embeddings is
measured and on which the encoders are timed. CALIBRATION: a disjoint set for observers that
need example activations, so no evaluation sentence is seen while quantizing.
Each sentence is 32 to 64 word-piece tokens long for the all-MiniLM-L6-v2 tokenizer (with
[CLS] and [SEP]); the topics are deliberately varied (science, cooking, law, sport, travel,
code, finance, medicine, history, everyday life).
"""

EVALUATION: tuple[str, ...] = (
    "The committee postponed its decision on the new bridge until engineers could explain why "
    "the cost estimate had nearly doubled since the first survey of the riverbed last spring. "
    "Local residents, who have waited almost a decade for a safer crossing, say they are "
    "tired of excuses and want work to start before winter.",
    "If you knead the dough for ten minutes and let it rise somewhere warm, the bread will "
    "have a light crumb and a crisp crust that crackles as it cools on the rack.",
    "Astronomers reported that the faint signal, first dismissed as instrument noise, repeats "
    "every sixteen days and appears to come from a dwarf galaxy about half a billion light "
    "years away.",
    "She missed the last train home, so she walked across the empty city at two in the "
    "morning, listening to the street sweepers and the occasional taxi rushing past. By the "
    "time she reached her door the sky was turning grey and the first bakeries were already "
    "open.",
    "Our quarterly revenue rose by eight percent, but higher shipping costs and a weaker "
    "currency reduced the operating margin, and the board has asked for a leaner budget next "
    "year.",
    "The function returns an empty list instead of raising an exception when the input file "
    "is missing, which hides configuration mistakes until much later in the pipeline. A clear "
    "error message at the point of failure would have saved the team several days of "
    "debugging.",
    "Patients who took the drug twice a day reported fewer headaches after three weeks, "
    "although the trial was small and the researchers caution against drawing firm "
    "conclusions.",
    "In 1848 revolutions spread across Europe within a few months, as news travelled by "
    "railway and telegraph faster than any government had expected or was prepared to handle.",
    "The goalkeeper guessed correctly and dived to his left, but the penalty was struck so "
    "hard that it bent his fingers back and still found the corner of the net. The crowd fell "
    "silent for a moment before the home supporters realised what had happened and began to "
    "cheer.",
    "Before you replace the battery, switch the device off, remove the four screws on the "
    "back panel, and disconnect the ribbon cable gently so that the connector does not break.",
    "Tenants have the right to a written notice at least two months before the landlord may "
    "increase the rent, and the increase must be justified by comparable local prices.",
    "The orchestra rehearsed the second movement again and again, because the conductor "
    "insisted that the violins should sound like a distant storm rather than a nearby one.",
    "Honey bees communicate the direction and distance of flowers through a waggle dance "
    "whose angle relative to gravity matches the angle between the sun and the food source. "
    "Scientists decoded this behaviour in the twentieth century by watching marked bees in "
    "glass observation hives.",
    "My grandmother kept every letter she ever received in shoeboxes under her bed, sorted by "
    "year, and we spent a whole weekend reading them after the funeral.",
    "A sudden drop in air pressure, a shift of the wind to the south and thickening high "
    "clouds usually mean that rain will arrive within the next twelve to twenty four hours.",
    "The startup's database went down during the product launch because a single migration "
    "locked the largest table for forty minutes while thousands of new users tried to sign "
    "up. The engineers later added a safeguard so that no schema change can run without a "
    "time limit.",
    "Volunteers planted more than three thousand native trees along the eroded riverbank, "
    "hoping their roots will hold the soil together before the autumn floods arrive. The "
    "project also trains local teenagers to monitor water quality each month.",
    "When the referee blew the final whistle the fans poured onto the pitch, and it took the "
    "stewards nearly an hour to clear the field so the trophy could be presented.",
    "The recipe calls for two cups of flour, a pinch of salt, three eggs, and enough cold "
    "milk to turn the mixture into a smooth batter that coats the back of a spoon.",
    "Copper conducts heat and electricity very well, which is why it is used in cooking pans, "
    "electrical wiring and the heat exchangers of many modern refrigerators.",
    "After months of negotiation the two companies agreed to merge, but regulators are "
    "expected to examine whether the combined firm would control too much of the regional "
    "market. Consumer groups worry that prices would rise for households in rural areas with "
    "few alternatives.",
    "The museum's new exhibition brings together paintings that have not been seen side by "
    "side since the artist's studio was emptied and its contents sold at auction in 1911.",
    "To reduce memory use during training, the model stores activations in half precision and "
    "recomputes some of them during the backward pass instead of keeping them all.",
    "The village school has only eleven pupils, and the teacher divides each lesson so that "
    "the youngest children practise reading while the older ones solve arithmetic problems.",
    "Despite the heavy snow the pilots landed safely, although passengers had to wait on the "
    "runway for almost two hours until a free gate and a ground crew became available. Two of "
    "them have just won a regional competition with a model of the solar system made from "
    "recycled materials.",
    "Chronic lack of sleep impairs memory, weakens the immune system and increases the risk "
    "of accidents, yet many adults still sleep fewer than six hours on a typical weeknight.",
    "The novel follows three generations of a fishing family on a remote island, and each "
    "chapter is told from the perspective of a different character looking back on the same "
    "storm.",
    "Please send the signed contract back by Friday so that the legal team can review the "
    "changes to the liability clause before the meeting with the supplier next week. Critics "
    "praised its quiet, patient language and the way small details return with new meaning "
    "near the end.",
    "Glaciers in the region have lost about a third of their volume since 1970, and the "
    "meltwater that farmers depend on during the dry summer months is expected to decline "
    "further.",
    "The detective noticed that the clock on the mantelpiece had stopped at a quarter past "
    "nine, exactly the time the neighbour claimed to have heard a door slam next door.",
    "A binary search halves the remaining interval at every step, so even a sorted list of a "
    "billion items can be searched with about thirty comparisons in the worst case. He kept "
    "the observation to himself until the suspects were gathered in the drawing room that "
    "evening.",
    "The farmers' market opens at seven on Saturday mornings, and the best strawberries, "
    "fresh bread and goat cheese are usually sold out well before ten o'clock.",
    "During the eclipse the temperature dropped noticeably, birds fell silent, and for a few "
    "minutes the sky turned a deep blue with a ring of white light around the moon.",
    "Investors sold technology shares after the central bank signalled that interest rates "
    "would stay high for longer than markets had expected, pushing the index down by two "
    "percent. Astronomers travelled from all over the world to the small town that lay in the "
    "path of totality.",
    "The hospital introduced a simple checklist before every operation, and within a year the "
    "number of serious complications and avoidable infections fell by more than a third.",
    "He learned to play the guitar by ear as a teenager, copying songs from the radio, and "
    "only started reading music when he joined a jazz band at university.",
    "The ancient road was paved with large flat stones and had drainage ditches on both "
    "sides, which is why long stretches of it are still usable after nearly two thousand "
    "years. By his thirties he was writing arrangements for other musicians and teaching "
    "harmony at the conservatory.",
    "Make sure the tent is pitched on high ground and facing away from the wind, and keep "
    "your food in a sealed bag hanging from a branch far away from where you sleep.",
    "The translation software handled everyday phrases well but struggled with idioms, legal "
    "terminology and jokes that depend on a double meaning in the original language. Hungry "
    "bears and raccoons are common in the area and have little fear of people.",
    "Electric buses are quieter and cleaner than diesel ones, but the city must also install "
    "charging stations at the depots and train mechanics to maintain the new vehicles.",
    "The children built a raft from empty barrels and old planks and floated it down the "
    "stream, until it hit a rock and they had to swim the last stretch back to the bank.",
    "Researchers trained the model on millions of labelled images, yet it still confused "
    "huskies with wolves whenever snow appeared in the background of the photograph. In the "
    "end a passing fisherman helped them pull the soggy raft out of the water.",
    "The council voted to turn the abandoned rail line into a cycling path, connecting three "
    "neighbourhoods with the river and the industrial park on the other side of town.",
    "A good espresso needs freshly ground beans, water just below boiling point, and about "
    "nine bars of pressure pushing the water through the coffee in twenty five to thirty "
    "seconds.",
    "Thousands of people queued in the rain to see the documents, which describe in careful "
    "handwriting how the town was rebuilt after the great fire of the seventeenth century. "
    "Baristas adjust the grind every morning, because humidity changes how quickly the water "
    "flows through the coffee.",
    "The software update fixed the security hole, but it also changed the default settings, "
    "so many users suddenly found that their backups had silently stopped running.",
    "Migratory birds use the Earth's magnetic field, the position of the stars and familiar "
    "landmarks to find their way across thousands of kilometres of sea and desert. Many users "
    "only noticed months later, when they needed to restore a file that had been deleted by "
    "mistake.",
    "When the power failed the whole apartment block went dark, and neighbours who had never "
    "spoken before gathered in the stairwell with candles and shared what food they had.",
    "The judge ruled that the evidence had been collected without a valid warrant and could "
    "therefore not be used, which left the prosecution with very little to support its case. "
    "Some of them stayed friends for years and still meet for dinner on the anniversary of "
    "the blackout.",
    "Marathon runners often hit a wall around the thirtieth kilometre, when the glycogen "
    "stored in their muscles runs out and the body switches to burning fat more slowly.",
    "The bakery on the corner has been run by the same family for four generations, and they "
    "still use the wood fired oven that the great grandfather built by hand in 1921.",
    "Compilers translate source code into machine instructions, and modern ones also reorder, "
    "inline and vectorise the code so that it runs several times faster than a naive "
    "translation.",
    "Heavy rainfall over the weekend caused the river to burst its banks, flooding dozens of "
    "homes and forcing the authorities to close the main road into the valley.",
    "The conference brought together teachers from twenty countries to share ideas about how "
    "to teach mathematics to children who struggle with reading and writing. The same careful "
    "attention to memory layout often matters as much as the choice of algorithm.",
    "Vaccines train the immune system to recognise a pathogen without causing the disease, so "
    "that the body can respond quickly and strongly if it meets the real infection later.",
    "The old lighthouse keeper wrote down the weather, the passing ships and the behaviour of "
    "the seabirds every single day for forty years in a stack of leather notebooks. Several "
    "schools will have to replace their textbooks because the new curriculum starts in the "
    "autumn.",
    "To keep the spreadsheet readable, put each kind of data in its own column, avoid merged "
    "cells, and record units in the header instead of typing them next to every number.",
    "The mountain pass is closed from November to May, when avalanches make the road too "
    "dangerous, and the villages beyond it can only be reached by a long detour through the "
    "valley.",
    "Her speech about affordable housing received a standing ovation, but critics pointed out "
    "that the plan did not explain where the money for thousands of new homes would come "
    "from. Most spreadsheet errors in published studies come from copying values by hand "
    "between sheets.",
    "Solar panels on the school roof now produce more electricity than the building uses in "
    "summer, and the surplus is sold to the grid to pay for new books and laboratory "
    "equipment.",
    "The cat refuses to eat anything except one particular brand of fish flavoured food, and "
    "it sits by the empty bowl staring at us until we give in and open another tin.",
    "Archaeologists found the remains of a wooden boat buried in the peat, along with fishing "
    "hooks, a bronze knife and seeds that suggest the site was used for at least three "
    "centuries.",
    "The tax office extended the filing deadline by a month after its website crashed "
    "repeatedly during the final week, when millions of people tried to submit their returns "
    "at once. The team now plans to reconstruct the boat and test whether it could have "
    "carried a small crew across the bay.",
    "Learning a second language as an adult is harder than as a child, but regular practice, "
    "conversation with native speakers and patience make steady progress entirely possible.",
    "The engineers replaced the wooden beams of the old mill with steel, but they kept the "
    "original water wheel, which still turns slowly and grinds flour for the visitors.",
    "Network latency rose sharply every evening, and after a week of logging the team traced "
    "the problem to a backup job that saturated the link between the two data centres.",
    "The choir sang in the cathedral for the first time in decades, and the sound echoed "
    "under the stone vaults long after the last note had been sung by the youngest singers. "
    "The fix was simple: the job now runs after midnight and is limited to half of the "
    "available bandwidth.",
    "Rising sea temperatures have bleached large parts of the coral reef, and divers say that "
    "fish which were common ten years ago are now difficult to find at all.",
    "The bicycle courier knows every shortcut in the old town, and he can usually deliver a "
    "package across the centre faster than a van stuck in the afternoon traffic.",
    "Insurance will cover the water damage only if the leak was sudden and accidental, so the "
    "assessor asked for photographs and the plumber's report before approving the claim.",
    "The professor explained entropy with a deck of cards: there are many more shuffled "
    "orders than sorted ones, so a random shuffle almost never returns the deck to its "
    "original order. The professor then asked the students to estimate how many shuffles it "
    "would take to see the sorted order again.",
    "On the first warm day of spring the park filled with families, joggers, dogs chasing "
    "balls and students lying on the grass with their books open but mostly unread.",
)

CALIBRATION: tuple[str, ...] = (
    "The workshop covers soldering, basic circuit design and safe use of the laser cutter, "
    "and participants take home a small radio that they assemble themselves during the "
    "afternoon.",
    "Storm warnings were issued for the whole coast, and fishermen pulled their boats high "
    "onto the beach while shop owners boarded up windows along the seafront promenade.",
    "A well written bug report states what you expected, what actually happened, and the "
    "exact steps and versions needed for someone else to see the same behaviour on their "
    "machine.",
    "The famine of the 1840s drove more than a million people to emigrate, and whole villages "
    "were left empty as families sailed to cities on the other side of the Atlantic.",
    "Slice the onions thinly and cook them slowly in butter for at least forty minutes, "
    "stirring now and then, until they turn deep brown and taste sweet rather than sharp.",
    "The satellite will measure the height of the sea surface to within a few centimetres, "
    "which helps scientists track currents, tides and the slow rise of the oceans.",
    "Our team lost the first three games of the season, but the new coach changed the "
    "formation and we have not been beaten since the beginning of October.",
    "The contract may be terminated by either party with ninety days written notice, except "
    "during the first year, when termination requires a documented breach of its terms.",
    "Children who read for pleasure every day tend to have a larger vocabulary and do better "
    "in most school subjects, including mathematics and the natural sciences. Teachers "
    "therefore set aside twenty minutes of quiet reading at the start of each school day.",
    "The train was delayed by a signal failure near the tunnel, so we spent an hour in a "
    "field watching cows, reading newspapers and sharing sandwiches with complete strangers.",
    "Memory leaks in long running services often come from caches that grow without a limit, "
    "so every cache should have a maximum size and a clear policy for evicting entries.",
    "The pharmacist explained that the antibiotic must be taken with food at the same times "
    "each day, and that the full course must be finished even if the symptoms disappear.",
    "Wind turbines along the ridge now supply power to about forty thousand homes, although "
    "some residents complain about the noise and the change to the view from the valley.",
    "The auction house expects the letters, written by the poet to her sister during the war, "
    "to sell for more than any manuscript of hers that has appeared on the market before.",
    "Every autumn the salmon return to the river where they hatched, leaping up waterfalls "
    "and weirs to reach the gravel beds where they will spawn and then die.",
    "The city introduced a congestion charge for cars entering the centre during working "
    "hours, and traffic fell by a fifth while bus journeys became noticeably faster. Shops in "
    "the centre first feared they would lose customers, but footfall actually increased "
    "during the first year.",
    "He repaired the antique clock by cutting a new brass gear by hand, because no "
    "replacement part had been manufactured for that model in more than a hundred years.",
    "A spreadsheet formula that refers to a whole column recalculates slowly, so restrict the "
    "range to the rows that actually contain data when the sheet becomes large.",
    "Hikers should carry a map and compass even on marked trails, because fog can roll in "
    "within minutes and mobile phones often lose signal in the higher parts of the range.",
    "The orchestra's new conductor is only twenty eight years old, but critics praise her "
    "precise tempo and the warmth she draws from the strings in slow movements.",
    "Farmers in the region are switching to drought resistant varieties of wheat and sorghum "
    "as the rainy season has become shorter and less predictable over the past decade.",
    "The museum guard noticed that one of the paintings was hanging slightly crooked, and "
    "closer inspection revealed that the canvas had been replaced with a skilful copy.",
    "Cache misses cost far more than arithmetic on modern processors, so arranging data to be "
    "read sequentially can speed up a program more than any clever algorithmic change.",
    "The family restaurant serves only one dish each day, cooked by the grandmother in a huge "
    "pot, and when the pot is empty the doors close no matter what time it is.",
    "Scientists drilled through three kilometres of ice to retrieve air bubbles that were "
    "trapped hundreds of thousands of years ago and record the ancient composition of the "
    "atmosphere. The ice cores also record volcanic eruptions, forest fires and the dust "
    "blown from distant deserts.",
    "The bank warned customers never to share their passwords by telephone, after fraudsters "
    "posing as staff persuaded hundreds of people to transfer their savings to fake accounts.",
    "Our neighbour grows tomatoes, beans and courgettes on a tiny balcony, watering them "
    "every evening with rainwater collected in a barrel beside the kitchen door.",
    "The parliament debated the bill late into the night, and it finally passed by a margin "
    "of only three votes after several amendments on data protection were accepted.",
    "Sharks have existed for more than four hundred million years, longer than trees, and "
    "some species can sense tiny electrical fields produced by the muscles of their prey.",
    "The printer jams whenever the paper is slightly damp, so we now store the packets in a "
    "sealed box and fan each stack of sheets before loading it into the tray.",
    "The volunteers repaired the roof of the community centre over three weekends, using "
    "materials donated by local businesses and a borrowed scaffold from the builder. The "
    "centre reopened with a party where the children performed a short play about the history "
    "of the neighbourhood.",
    "After the earthquake engineers inspected every school and hospital in the province, and "
    "buildings that failed the new safety standard were closed until they could be "
    "reinforced. Engineers also installed sensors that will warn the authorities if any "
    "structure starts to crack or tilt.",
)
